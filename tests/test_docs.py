"""The examples in the public docstrings run and print what they say."""
import doctest

import pytest

import sorter
from sorter import ranking


@pytest.mark.parametrize('module', [sorter, ranking])
def test_docstring_examples(module):
  result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
  assert result.attempted > 0 and result.failed == 0
