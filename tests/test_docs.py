"""The front door and the manual point where they say: every relative link of README.md and
docs/*.md names a file that exists, and an anchor names one of that file's headings."""
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = [os.path.join(ROOT, 'README.md')] + sorted(glob.glob(os.path.join(ROOT, 'docs', '*.md')))
LINK = re.compile(r'(?<!!)\[[^\]]*\]\(([^)\s]+)\)')


def _anchor(heading: str) -> str:
  """GitHub's anchor of a heading: lower case, markup and punctuation dropped but hyphens and
  underscores, spaces made hyphens."""
  text = re.sub(r'[`*]', '', heading.strip().lower())
  text = re.sub(r'[^\w\- ]', '', text)
  return text.replace(' ', '-')


def _anchors(path: str) -> set:
  with open(path, encoding='utf-8') as f:
    text = re.sub(r'```.*?```', '', f.read(), flags=re.S)  # no headings inside code blocks
  return {_anchor(m.group(1)) for m in re.finditer(r'^#+\s+(.*)$', text, flags=re.M)}


def test_anchor_rule_by_hand():
  assert _anchor("LL4AL as its authors ran it") == 'll4al-as-its-authors-ran-it'
  assert _anchor("The paper's configs at their sizes") == 'the-papers-configs-at-their-sizes'
  assert _anchor('`label answer`: a file') == 'label-answer-a-file'


@pytest.mark.parametrize('page', PAGES, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_relative_link_resolves(page):
  with open(page, encoding='utf-8') as f:
    text = re.sub(r'```.*?```', '', f.read(), flags=re.S)
  broken = []
  for target in LINK.findall(text):
    if re.match(r'[a-z]+:', target):  # https:, mailto:
      continue
    path, _, anchor = target.partition('#')
    full = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
    if not os.path.exists(full):
      broken.append(f'{target}: no {os.path.relpath(full, ROOT)}')
    elif anchor and full.endswith('.md') and anchor not in _anchors(full):
      broken.append(f'{target}: no heading #{anchor} in {os.path.relpath(full, ROOT)}')
  assert not broken, broken
