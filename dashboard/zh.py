"""The dashboard's Chinese: English text (as the code writes it in tr() or N_()) -> Simplified Chinese.

Long because it is a table, one line per string of the UI; the lessons keep their own texts beside their code.
tests/dashboard/test_i18n.py checks that every tr()/N_() text of dashboard/ and pages/ is here with the same
{placeholders}, and that nothing here is unused.
"""

from __future__ import annotations

ZH: dict[str, str] = {}
