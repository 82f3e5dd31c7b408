"""Every public name of ntklib has a complete numpydoc docstring (numpydoc's own validator).

The checks are numpydoc's error codes (https://numpydoc.readthedocs.io/en/latest/validation.html):

* GL08: the object has a docstring;
* SS01, SS03: a one-line summary ending in a period;
* PR01, PR02: every parameter documented and no unknown one;
* PR07: every parameter described;
* RT01: a Returns (or Yields) section for functions that return;
* EX01: an Examples section (doctests: they run under ``--doctest-modules``).

Warning classes are exempt from EX01 (they are raised, not called).
"""
import inspect

import pytest
from numpydoc.validate import validate

import ntklib as nk

CODES = {"GL08", "SS01", "SS03", "PR01", "PR02", "PR07", "RT01", "EX01"}


def _public_objects():
    for name in nk.__all__:
        obj = getattr(nk, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield name, obj


def _public_methods():
    """Public methods (and ``__call__``) of ntklib's public classes, those inherited from ntklib's own
    (private) base classes included, but not those of torch's ``nn.Module``. Each is validated where
    it is defined (the nearest class in the MRO)."""
    seen = set()
    for name, cls in _public_objects():
        if not inspect.isclass(cls):
            continue
        done = set()
        for base in cls.__mro__:
            if not base.__module__.startswith("ntklib"):
                continue
            for attr, member in vars(base).items():
                if attr in done or not inspect.isfunction(member):
                    continue
                done.add(attr)
                if (not attr.startswith("_") or attr == "__call__") and (base, attr) not in seen:
                    seen.add((base, attr))
                    yield f"{name}.{attr}", base, attr


#: methods are held to the same sections but Examples (their class's example shows the use)
METHOD_CODES = CODES - {"EX01"}


def _exempt(obj):
    return {"EX01"} if inspect.isclass(obj) and issubclass(obj, Warning) else set()


@pytest.mark.parametrize("name,obj", list(_public_objects()), ids=lambda v: v if isinstance(v, str) else "")
def test_public_docstring_is_complete(name, obj):
    result = validate(f"{obj.__module__}.{obj.__qualname__}")
    errors = [f"{code}: {msg}" for code, msg in result["errors"] if code in CODES - _exempt(obj)]
    assert not errors, f"nk.{name}:\n" + "\n".join(errors)


@pytest.mark.parametrize("label,cls,attr", list(_public_methods()), ids=lambda v: v if isinstance(v, str) else "")
def test_public_method_docstring_is_complete(label, cls, attr):
    result = validate(f"{cls.__module__}.{cls.__qualname__}.{attr}")
    errors = [f"{code}: {msg}" for code, msg in result["errors"] if code in METHOD_CODES]
    assert not errors, f"nk.{label}:\n" + "\n".join(errors)


def test_the_validator_catches_a_missing_section():
    """The check can fail: a function without Returns/Examples and an undocumented parameter."""

    def bad(x, y):
        """Add two numbers.

        Parameters
        ----------
        x : float
            The first.
        """
        return x + y

    bad.__module__ = __name__
    globals()["bad"] = bad
    codes = {code for code, _ in validate(f"{__name__}.bad")["errors"]}
    assert {"PR01", "RT01", "EX01"} <= codes
