"""Application services: one use case each, wired from ports, called by one handler."""
