#!/usr/bin/env python3
"""Writes fuzz seeds from the golden vectors in proto/vectors/posts.json.

Each `signed_post` (valid and invalid) becomes seeds/<kind>_<name>.bin, and each valid
vector's bare `post_bytes` becomes seeds/post_<name>.bin (a seed for the raw `Post`
decode in the target). Run from anywhere: python3 proto/fuzz/make_seeds.py
"""
import json
import pathlib

here = pathlib.Path(__file__).resolve().parent
vectors = json.loads((here.parent / "vectors" / "posts.json").read_text())
out = here / "seeds"
out.mkdir(exist_ok=True)
count = 0
for kind in ("valid", "invalid"):
    for v in vectors[kind]:
        (out / f"{kind}_{v['name']}.bin").write_bytes(bytes.fromhex(v["signed_post"]))
        count += 1
        if kind == "valid":
            (out / f"post_{v['name']}.bin").write_bytes(bytes.fromhex(v["post_bytes"]))
            count += 1
print(f"wrote {count} seeds to {out}")

# The circle_record target: every record and invalid record of circles.json, and the
# catch-up request.
circles = json.loads((here.parent / "vectors" / "circles.json").read_text())
def slug(name):
    return name.split(" (")[0].replace(" ", "_").replace("'", "")
for r in circles["records"]:
    (out / f"circle_{slug(r['name'])}.bin").write_bytes(bytes.fromhex(r["signed_record"]))
for r in circles["invalid"]:
    (out / f"circle_invalid_{slug(r['name'])}.bin").write_bytes(bytes.fromhex(r["signed_record"]))
(out / "circle_catch_up_request.bin").write_bytes(bytes.fromhex(circles["catch_up_request"]))
print("and the circle_record seeds (circle_*.bin)")
