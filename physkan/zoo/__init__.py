"""The physkan model zoo: versioned HDF5 model cards, a server and a client.

>>> from physkan import zoo
>>> ref = zoo.register_model(model, name="pendulum", formula="q_dot**2/2 + cos(q)")
>>> model = zoo.load("pendulum")          # or "pendulum:3", "pendulum@prod"
>>> model.card.formula
'q_dot**2/2 + cos(q)'

``load`` looks in the local zoo (``zoo=`` / ``$PHYSKAN_ZOO`` / user data dir),
then the download cache, then a server (``url=`` / ``$PHYSKAN_ZOO_URL``).
"""

from physkan.zoo.api import ZooEntry, load, load_entry, locate, pull, push, register_model
from physkan.zoo.card import ModelCard, Spec, ZooError, parse_spec
from physkan.zoo.local import LocalZoo, ModelRef, default_cache_dir, default_zoo_dir
from physkan.zoo.store import read_model_file, verify_file, write_model_file

__all__ = [
    "LocalZoo",
    "ModelCard",
    "ModelRef",
    "Spec",
    "ZooEntry",
    "ZooError",
    "default_cache_dir",
    "default_zoo_dir",
    "load",
    "load_entry",
    "locate",
    "parse_spec",
    "pull",
    "push",
    "read_model_file",
    "register_model",
    "verify_file",
    "write_model_file",
]
