import pytest

from neuroclass.errors import NeuroclassError
from neuroclass.registry import Registry


def test_register_get_and_did_you_mean():
    reg = Registry("widget")
    reg.register("resnet")(1)
    assert reg.get("resnet") == 1
    assert reg.names() == ["resnet"]
    with pytest.raises(NeuroclassError, match="Did you mean 'resnet'"):
        reg.get("resnt")


def test_duplicate_names_raise():
    reg = Registry("widget")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(2)
