"""The package exports exactly its public API."""

import interpreter


def test_all_is_exact_and_importable():
    assert sorted(interpreter.__all__) == interpreter.__all__
    for name in interpreter.__all__:
        assert hasattr(interpreter, name), name
    public = {n for n in vars(interpreter) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(interpreter, n)).__name__ == "module"}
    assert public - modules == set(interpreter.__all__) - {"__version__"}


def test_errors_form_one_tree():
    from interpreter import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.InterpreterError)
    assert issubclass(errors.NoSuchFile, KeyError) and issubclass(
        errors.InvalidFilename, ValueError
    )


def test_assistants_errors_hang_under_the_same_root():
    from interpreter import errors

    names = ["AssistantsError", "InvalidRequest", "ModelError", "NoSuchObject", "ThreadLocked"]
    for name in [*names, "ToolCallLimit"]:
        assert issubclass(getattr(errors, name), errors.AssistantsError)
        assert issubclass(getattr(errors, name), errors.InterpreterError)
        assert getattr(interpreter, name) is getattr(errors, name)
    assert issubclass(errors.NoSuchObject, KeyError)
    assert issubclass(errors.ThreadLocked, errors.InvalidRequest)
