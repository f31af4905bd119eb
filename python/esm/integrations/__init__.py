"""Adapters that let tools NAS users already run drive esm surrogates.

Each adapter is its own module and is imported explicitly; importing :mod:`esm` never loads
them or their libraries.

- :mod:`esm.integrations.pymoo`: a vectorized pymoo ``Problem`` over a search space and esm
  model files (latency and any other surrogate or callable as objectives and constraints), with
  sampling, crossover and mutation that are the space's own operators
  (``pip install 'esm-nas[pymoo]'``).
- :mod:`esm.integrations.ofa`: an efficiency predictor with Once-for-All's interface
  (``get_efficiency(arch_dict)``), so that OFA's evolution finder searches on an esm latency
  surrogate unchanged (needs nothing from OFA itself).
"""
