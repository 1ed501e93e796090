"""The manifests run the image the way the Containerfile builds it
(deploy/image/imagecheck.py `manifests`): numeric non-root user equal to the
Containerfile's USER, read-only root filesystem, no capabilities, the
exposed ports, args rather than command, and the pinned tag equal to the
version the image is labelled with. deploy/image/run-check.sh applies the
same check, and the image-config one, to the image it runs.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGECHECK = ROOT / "deploy/image/imagecheck.py"
FILES = [
    "Containerfile",
    "Cargo.toml",
    "deploy/base/deployment.yaml",
    "deploy/imagepolicywebhook/static-pod.yaml",
    "deploy/components/image/kustomization.yaml",
]


def imagecheck(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(IMAGECHECK), "manifests", "--root", str(root), "--build-arg", "REVISION=test"],
        capture_output=True, text=True, timeout=60,
    )


def copy_of_repo(tmp_path: Path) -> Path:
    for f in FILES:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / f, tmp_path / f)
    return tmp_path


def test_manifests_agree_with_the_containerfile():
    r = imagecheck(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "runs as 65532:65532" in r.stdout


def test_a_manifest_with_another_user_is_caught(tmp_path):
    root = copy_of_repo(tmp_path)
    dep = root / "deploy/base/deployment.yaml"
    dep.write_text(dep.read_text().replace("runAsUser: 65532", "runAsUser: 1000", 1))
    r = imagecheck(root)
    assert r.returncode == 1
    assert "runAsUser/runAsGroup 1000/65532, image 65532/65532" in r.stderr


def test_a_writable_root_filesystem_is_caught(tmp_path):
    root = copy_of_repo(tmp_path)
    pod = root / "deploy/imagepolicywebhook/static-pod.yaml"
    pod.write_text(pod.read_text().replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"))
    r = imagecheck(root)
    assert r.returncode == 1
    assert "readOnlyRootFilesystem" in r.stderr


def test_a_named_user_in_the_containerfile_is_caught(tmp_path):
    root = copy_of_repo(tmp_path)
    cf = root / "Containerfile"
    cf.write_text(cf.read_text().replace("USER 65532:65532", "USER nonroot"))
    r = imagecheck(root)
    assert r.returncode == 1
    assert "not numeric" in r.stderr


def test_a_stale_image_tag_is_caught(tmp_path):
    root = copy_of_repo(tmp_path)
    comp = root / "deploy/components/image/kustomization.yaml"
    comp.write_text(re.sub(r"newTag: .*", "newTag: 0.0.0-stale", comp.read_text()))
    r = imagecheck(root)
    assert r.returncode == 1
    assert "newTag '0.0.0-stale'" in r.stderr
