# Only here because C extensions cannot yet be declared in pyproject.toml alone.
from setuptools import setup

setup()
