"""Architecture families; importing this package registers every builder."""

from zoo.models import airbench, convnet, inception, lenet, mlp, resnet, tiny, vgg

__all__ = ["airbench", "convnet", "inception", "lenet", "mlp", "resnet", "tiny", "vgg"]
