"""The machine: devices, and the torchvision import workaround."""
