"""Backbones (a small CNN for CPU, the CIFAR ResNet-18 for the paper's recipe) and the head."""

from __future__ import annotations

from torch import Tensor, nn


def _conv_bn(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU-maxpool blocks (w, 2w, 4w channels) and global average pooling."""

    def __init__(self, in_channels: int, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cin, cout in ((in_channels, width), (width, 2 * width), (2 * width, 4 * width)):
            layers += [*_conv_bn(cin, cout), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dim = 4 * width

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.features(x)
        return out


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn(cin, cout, stride),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.skip = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.relu(self.body(x) + self.skip(x))
        return out


class ResNet18Cifar(nn.Module):
    """ResNet-18 with the CIFAR stem (3×3 conv, stride 1, no max-pool); 512-d features."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = _conv_bn(in_channels, 64)
        cin = 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dim = 512

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.features(x)
        return out


def projection_head(dim: int, hidden: int, out: int) -> nn.Module:
    """SimCLR's 2-layer MLP head (with BN, as in most CIFAR recipes)."""
    return nn.Sequential(
        nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out)
    )
