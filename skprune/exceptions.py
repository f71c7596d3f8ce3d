"""Exceptions and warnings raised by skprune."""

__all__ = ["DegenerateTrainingWarning", "StarvedGroupWarning", "TrainingDivergedError"]


class TrainingDivergedError(RuntimeError):
    """A query network's training diverged, so scores from it would be meaningless.

    Raised when a batch loss becomes NaN or infinite, when the network
    predicts non-finite probabilities, or when the loss grows far past its
    starting value. Lower the estimator's learning rate (``lr``), add
    gradient clipping, or check the inputs for NaN or huge values.
    """


class DegenerateTrainingWarning(UserWarning):
    """A query network trained without learning anything useful to score with.

    Issued when its predictions collapse onto a single class or its scores
    onto a handful of distinct values: the pruner still selects, but its
    selection is close to arbitrary.
    """


class StarvedGroupWarning(UserWarning):
    """A pruner cut a class (or group) to almost nothing.

    Issued, naming the classes, when a selection leaves a class only its one
    guaranteed sample, or less than a tenth of the overall density: a model
    trained on the selection will likely fail on that class. It fires
    whatever the quota, ``quota=None`` included (a strategy that keeps the
    globally hardest samples starves easy classes on its own).

    Warnings made by ``StarvedGroupWarning.starved`` carry what they report, so that a
    caller can name the classes its own way (``described``).

    Attributes
    ----------
    groups : list
        Labels of the starved classes (groups); empty for a plain message.
    kept, sizes : list of int
        Rows each of them keeps, and has.
    """

    groups, kept, sizes = (), (), ()

    @classmethod
    def starved(cls, who, groups, kept, sizes, density, hint=""):
        """The warning that ``who`` (a quota, or a pruner without one) starves ``groups``.

        Parameters
        ----------
        who : str
            What cut them, e.g. ``"MetriQ"`` or ``"EL2NPruner (quota=None)"``.
        groups : list
            Labels of the starved classes (groups).
        kept, sizes : list of int
            Rows each of them keeps, and has.
        density : float
            The pruner's overall density.
        hint : str, default=""
            Advice appended to the message.

        Returns
        -------
        StarvedGroupWarning
        """
        fields = {"who": who, "groups": list(groups), "kept": list(kept),
                  "sizes": list(sizes), "density": density, "hint": hint}
        warning = cls(_starved_message(names=fields["groups"], **fields))
        warning.__dict__.update(fields)
        return warning

    def described(self, names):
        """This warning with its classes named by ``names`` (a label -> name mapping)."""
        if not self.groups:
            return self
        fields = {name: getattr(self, name)
                  for name in ("who", "groups", "kept", "sizes", "density", "hint")}
        named = type(self)(_starved_message(
            names=[names.get(group, group) for group in self.groups], **fields))
        named.__dict__.update(fields)
        return named


def _starved_message(who, names, groups, kept, sizes, density, hint):
    one = len(names) == 1
    detail = ", ".join(f"{name}: {count} of {size}"
                       for name, count, size in zip(names, kept, sizes, strict=True))
    return (
        f"{who} cuts {names} to {'its' if one else 'their'} guaranteed minimum or below a "
        f"tenth of the overall density {density:g} (kept {detail}). Models trained on this "
        f"selection may fail on {'it' if one else 'them'}.{hint}"
    )


#: Packages whose frames a warning skips to point at the user's own call.
_LIBRARY_DIRS = None


def user_stacklevel():
    """The ``stacklevel`` that points ``warnings.warn`` at the first frame outside the libraries.

    Frames of skprune, scikit-learn, imbalanced-learn, skorch, joblib and
    the standard library's ``contextlib``/``functools`` are skipped, so that
    a warning raised deep in a fit (inside a pipeline or a search) names the
    line of the user's code that started it.
    """
    import contextlib
    import functools
    import os
    import sys

    global _LIBRARY_DIRS
    if _LIBRARY_DIRS is None:
        import imblearn
        import joblib
        import sklearn
        import skorch

        import skprune

        _LIBRARY_DIRS = tuple(os.path.dirname(module.__file__) + os.sep for module in
                              (skprune, sklearn, imblearn, skorch, joblib)) + (
            contextlib.__file__, functools.__file__)
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
        frame, level = frame.f_back, level + 1
    # warnings.warn is called one frame below this function's caller.
    return level


def with_article(word):
    """``word`` after "a" or "an", as it is read: "an ImageFolder", "a TensorDataset".

    Parameters
    ----------
    word : str
        A name, as it appears in a message (a class name, a dtype).
    """
    word = str(word)
    # Vowel letters that are read as consonants ("a uint8", "a UserDict").
    sounds_consonant = word.lower().startswith(("uint", "uni", "use", "usi", "eu", "one"))
    vowel = word[:1].lower() in "aeiou" and not sounds_consonant
    return f"{'an' if vowel else 'a'} {word}"
