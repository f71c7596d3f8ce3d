"""Every public class and function documents exactly the parameters it takes."""

import inspect

import pytest
from numpydoc.docscrape import ClassDoc, FunctionDoc

import skprune
from skprune import (
    callbacks,
    datasets,
    exceptions,
    gradients,
    metrics,
    models,
    quotas,
    recording,
    scores,
    selection,
    utils,
)
from skprune.utils import estimator_checks

MODULES = (skprune, callbacks, datasets, exceptions, gradients, metrics, models, quotas,
           recording, scores, selection, utils, estimator_checks)


def public_objects():
    seen = {}
    for module in MODULES:
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                seen.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return sorted(seen.items())


OBJECTS = public_objects()


def documented_parameters(obj):
    doc = ClassDoc(obj) if inspect.isclass(obj) else FunctionDoc(obj)
    names = []
    for parameter in doc["Parameters"]:
        # "X, y : array-like" documents two parameters.
        names += [name.strip() for name in parameter.name.split(",")]
    return [name.lstrip("*") for name in names if name]


def signature_parameters(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    if inspect.isclass(obj) and target is object.__init__:
        return []
    parameters = inspect.signature(target).parameters.values()
    return [p.name for p in parameters if p.name != "self"]


@pytest.mark.parametrize("name, obj", OBJECTS, ids=[name for name, _ in OBJECTS])
def test_parameters_are_documented_in_order(name, obj):
    if issubclass(obj, BaseException) if inspect.isclass(obj) else False:
        pytest.skip("exceptions take a message")
    if not obj.__doc__:
        pytest.fail(f"{name} has no docstring")
    expected = [p for p in signature_parameters(obj) if p != "kwargs"]
    documented = [p for p in documented_parameters(obj) if p != "kwargs"]
    assert documented == expected, f"{name}: documented {documented}, takes {expected}"


def test_every_public_pruner_documents_its_fitted_attributes():
    for name in skprune.__all__:
        obj = getattr(skprune, name)
        if inspect.isclass(obj) and issubclass(obj, skprune.DataPruner):
            attributes = {a.name for a in ClassDoc(obj)["Attributes"]}
            assert {"scores_", "sample_indices_", "class_counts_", "quota_"} <= attributes, name
