"""Flower server side: the ServerApp and the strategies that drive secure protocols."""
