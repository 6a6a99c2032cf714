"""Text from outside the page (a card, a file name, an error message) made safe to show."""

from __future__ import annotations

import re

# every ASCII punctuation character may be backslash-escaped in CommonMark, which Streamlit renders
_MARKDOWN_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")


def plain(text: object) -> str:
    """Text from a card, a file name or an error message, safe in any Streamlit element that renders
    Markdown (st.caption, st.error, st.warning, st.subheader, st.markdown): one line, printable (a file
    name that is not UTF-8 gets escapes), every Markdown and HTML character escaped. So a card field
    holding `![x](https://example.org/t.png)` is shown as those characters, and the browser fetches nothing."""
    from inside_core.data.errors import printable

    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(printable(text).split()))
