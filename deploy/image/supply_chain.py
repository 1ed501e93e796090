#!/usr/bin/env python3
"""The SBOM check and the vulnerability-scan predicate of deploy/image/dogfood.sh.

  supply_chain.py check-sbom SBOM_JSON
      Validates a CycloneDX JSON document against the CycloneDX JSON schema of
      its specVersion (the schemas shipped in the PyPI package
      cyclonedx-python-lib: offline, strict), and checks that it describes this
      repository's imagegate: metadata.component name and version as in
      Cargo.toml, and every [dependencies] entry of Cargo.toml present at the
      version Cargo.lock pins.

  supply_chain.py vuln-predicate SBOM_JSON IMAGE DIGEST OUT_JSON
                  [--finding CVSS] [--age HOURS]
      Writes a cosign vulnerability predicate
      (https://cosign.sigstore.dev/attestation/vuln/v1) whose scanner.result is
      a Trivy-shaped JSON report (SchemaVersion 2) over the SBOM's components.
      No vulnerability database can be reached from here, so this is a
      stand-in with no findings (scanner.uri says so); --finding adds one
      synthetic finding with that CVSS v3 score, --age backdates the scan.
      A release pipeline attests a real scan instead
      (`trivy image --format cosign-vuln`, or `cosign attest --type vuln`).
"""
import argparse
import datetime as dt
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fail(msg):
    print(f"supply_chain: FAIL {msg}", file=sys.stderr)
    sys.exit(1)


def cargo_deps():
    """{name: version} of Cargo.toml's [dependencies], versions from Cargo.lock."""
    toml = (ROOT / "Cargo.toml").read_text()
    section = re.search(r"^\[dependencies\]\n(.*?)(?=^\[)", toml, re.S | re.M).group(1)
    names = [m.group(1) for m in re.finditer(r"^([A-Za-z0-9_-]+)\s*=", section, re.M)]
    locked = {}
    for block in (ROOT / "Cargo.lock").read_text().split("[[package]]")[1:]:
        n = re.search(r'^name = "([^"]+)"', block, re.M).group(1)
        v = re.search(r'^version = "([^"]+)"', block, re.M).group(1)
        locked.setdefault(n, set()).add(v)
    version = re.search(r'^version = "([^"]+)"', toml, re.M).group(1)
    return version, {n: locked.get(n, set()) for n in names}


def check_sbom(path):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = Path(path).read_text()
    doc = json.loads(text)
    if doc.get("bomFormat") != "CycloneDX":
        fail(f"{path}: bomFormat is {doc.get('bomFormat')!r}")
    spec = doc.get("specVersion", "")
    try:
        sv = SchemaVersion.from_version(spec)
    except ValueError:
        fail(f"{path}: unknown CycloneDX specVersion {spec!r}")
    errors = JsonStrictValidator(sv).validate_str(text)
    if errors is not None:
        fail(f"{path}: not valid against the CycloneDX {spec} JSON schema: {errors}")
    print(f"supply_chain: ok   {path}: valid CycloneDX {spec} (strict JSON schema, offline)")
    version, deps = cargo_deps()
    comp = (doc.get("metadata") or {}).get("component") or {}
    if comp.get("name") != "imagegate" or comp.get("version") != version:
        fail(f"{path}: describes {comp.get('name')} {comp.get('version')}, not imagegate {version}")
    have = {}
    for c in doc.get("components") or []:
        have.setdefault(c.get("name"), set()).add(c.get("version"))
    for name, versions in deps.items():
        if not versions or not (have.get(name, set()) & versions):
            fail(f"{path}: dependency {name} {sorted(versions)} (Cargo.lock) is not among the components")
    print(f"supply_chain: ok   {path}: imagegate {version}, {len(doc.get('components') or [])} components, "
          f"all {len(deps)} direct dependencies at their Cargo.lock versions")


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def vuln_predicate(sbom_path, image, digest, out, finding, age_hours):
    sbom = json.loads(Path(sbom_path).read_text())
    finished = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=age_hours)
    started = finished - dt.timedelta(seconds=1)
    packages = [{"ID": f"{c['name']}@{c['version']}", "Name": c["name"], "Version": c["version"],
                 "Identifier": {"PURL": c.get("purl", "")}}
                for c in sbom.get("components") or [] if c.get("name") and c.get("version")]
    result = {"Target": "usr/local/bin/imagegate", "Class": "lang-pkgs", "Type": "rustbinary",
              "Packages": packages}
    if finding is not None:
        pkg = packages[0]
        result["Vulnerabilities"] = [{
            "VulnerabilityID": "DOGFOOD-SYNTHETIC-0001",
            "PkgName": pkg["Name"], "InstalledVersion": pkg["Version"],
            "PkgIdentifier": {"PURL": pkg["Identifier"]["PURL"]},
            "Status": "affected", "SeveritySource": "nvd",
            "Title": "synthetic finding (deploy/image/dogfood.sh negative test)",
            "Severity": "CRITICAL" if finding >= 9.0 else "HIGH" if finding >= 7.0 else "MEDIUM",
            "CVSS": {"nvd": {"V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "V3Score": finding}},
        }]
    report = {"SchemaVersion": 2, "CreatedAt": rfc3339(finished), "ArtifactName": image,
              "ArtifactType": "container_image",
              "Metadata": {"RepoDigests": [f"{image.rsplit(':', 1)[0] if '@' not in image else image.split('@')[0]}@{digest}"]},
              "Results": [result]}
    predicate = {
        "invocation": {"parameters": None, "uri": "", "event_id": "", "builder.id": ""},
        "scanner": {"uri": "pkg:generic/imagegate-dogfood-stand-in@0",
                    "version": "0",
                    "db": {"uri": "", "version": "none: no vulnerability database is reachable offline"},
                    "result": report},
        "metadata": {"scanStartedOn": rfc3339(started), "scanFinishedOn": rfc3339(finished)},
    }
    Path(out).write_text(json.dumps(predicate, indent=1))
    what = f"1 synthetic finding, CVSS {finding}" if finding is not None else "no findings"
    print(f"supply_chain: vuln predicate {out}: {len(packages)} packages, {what}, finished {rfc3339(finished)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check-sbom")
    c.add_argument("sbom")
    v = sub.add_parser("vuln-predicate")
    v.add_argument("sbom")
    v.add_argument("image")
    v.add_argument("digest")
    v.add_argument("out")
    v.add_argument("--finding", type=float)
    v.add_argument("--age", type=float, default=0.0)
    a = ap.parse_args()
    if a.cmd == "check-sbom":
        check_sbom(a.sbom)
    else:
        vuln_predicate(a.sbom, a.image, a.digest, a.out, a.finding, a.age)


if __name__ == "__main__":
    main()
