"""torch modules of the search spaces (imported only by ``SearchSpace.build``)."""
