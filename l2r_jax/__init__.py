"""l2r-jax: Learning to Rank for Active Learning (Li et al., ICPR 2020) in JAX and Flax."""
__version__ = '0.1.0'
