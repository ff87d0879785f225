"""Print, for each message file given, the From/To/Cc address sets as Python's standard
library parses them (email.message_from_bytes with policy compat32 and
email.utils.getaddresses), one JSON object per line.

Addresses are normalized the way Tributary's capture contract compares them: trimmed,
lowercased, internationalized domains in ASCII (IDNA) form. Empty results of
getaddresses (Python's way of saying "nothing parseable here") are left out.
"""

import email
import email.policy
import email.utils
import json
import sys


def normalize(address):
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if at and not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            pass
        address = local + "@" + domain
    return address.lower()


def addresses(message, header):
    values = [str(value) for value in message.get_all(header, [])]
    found = set()
    for _name, address in email.utils.getaddresses(values):
        address = normalize(address)
        if address:
            found.add(address)
    return sorted(found)


def main(paths):
    for path in paths:
        with open(path, "rb") as handle:
            message = email.message_from_bytes(handle.read(), policy=email.policy.compat32)
        row = {"file": path}
        for header in ("from", "to", "cc"):
            row[header] = addresses(message, header)
        print(json.dumps(row))


if __name__ == "__main__":
    main(sys.argv[1:])
