"""Fill empty msgstr entries of a .po file from a JSON dictionary {msgid: msgstr}.

Usage: python scripts/po_fill.py src/memberhub/locale/zh_Hans/LC_MESSAGES/django.po translations.json
Prints the msgids still untranslated, so a translator sees what is left.
"""

from __future__ import annotations

import json
import re
import sys


def _unquote(s: str) -> str:
    return json.loads(s)


def main(po_path: str, dict_path: str) -> int:
    table: dict[str, str] = json.load(open(dict_path, encoding="utf-8"))
    text = open(po_path, encoding="utf-8").read()
    blocks = text.split("\n\n")
    missing = []
    for i, block in enumerate(blocks):
        if re.search(r"^#,.*\bfuzzy\b", block, re.M) and 'msgid ""\nmsgstr ""\n"' not in block:
            # msgmerge's guess from a similar message is usually wrong: translate afresh.
            block = re.sub(r"^#\| .*\n", "", block, flags=re.M).replace("#, fuzzy\n", "")
            block = re.sub(r"^#, fuzzy, ", "#, ", block, flags=re.M)
            block = re.sub(r'^msgstr ((?:".*"\n?)+)', 'msgstr ""', block, flags=re.M).rstrip("\n")
            blocks[i] = block
        m = re.search(r'^msgid ((?:".*"\n?)+)msgstr ""[ \t]*$', block, re.M)
        if not m:
            continue
        msgid = "".join(_unquote(part) for part in re.findall(r'".*"', m.group(1)))
        if not msgid:
            continue
        if msgid in table:
            translated = json.dumps(table[msgid], ensure_ascii=False)
            blocks[i] = block[: m.end(1)] + f"msgstr {translated}" + block[m.end():]
            blocks[i] = blocks[i].replace("#, fuzzy\n", "")
        else:
            missing.append(msgid)
    open(po_path, "w", encoding="utf-8").write("\n\n".join(blocks))
    for msgid in missing:
        print(f"untranslated: {msgid}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
