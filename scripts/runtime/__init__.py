"""The machine: the distributed context (ranks, the local device), and the torchvision import workaround."""
