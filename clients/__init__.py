"""Flower client side: the ClientApp and its handlers."""
