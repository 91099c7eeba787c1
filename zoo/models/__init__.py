"""Architecture families; importing this package registers every builder."""

from zoo.models import convnet, inception, lenet, mlp, resnet, tiny, vgg

__all__ = ["convnet", "inception", "lenet", "mlp", "resnet", "tiny", "vgg"]
