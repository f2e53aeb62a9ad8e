"""Prediction: models behind one port, their ensemble, and the scoring of every forecast."""
