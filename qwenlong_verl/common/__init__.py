"""Small modules both sides import: names known to veRL's registries, task labels, file writing, the
OpenAI-compatible client. They import nothing else of this package, so either side can use them."""
