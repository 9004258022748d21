"""The ``jaxbackprop`` command: thin wrappers that parse, call the library and print."""
