"""Untrusted zips and images: a prepared zip is what its manifest says, hostile files are refused in one line
within bounded memory, non-regular files are never opened, and 16-bit images convert by value."""

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from configs.default import get_default_configs
from scripts.cli.errors import DatasetUnavailable
from scripts.config import build
from scripts.data.datasets.image_folders import list_images
from scripts.data.datasets.prepared import MANIFEST_NAME, image_name, png_bytes, write_prepared
from scripts.data.image_decoding import UnreadableImage
from scripts.sampling.image_files import read_image
from tests.helpers import ROOT, build_dataset

SIZE = 8


def images(count, size=SIZE):
    return [(torch.full((1, size, size), 40 * i, dtype=torch.uint8), None) for i in range(count)]


def prepared_zip(path, count=3, size=SIZE):
    write_prepared(str(path), images(count, size), resolution=(SIZE, SIZE), channels=1, source="test")
    return str(path)


def rewritten(path, replace=None, manifest=None, drop=()):
    """The zip at ``path`` written again with members replaced ({name: bytes}), dropped, or the manifest edited."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist() if name not in drop}
    members.update(replace or {})
    if manifest is not None:
        members[MANIFEST_NAME] = json.dumps(manifest(json.loads(members[MANIFEST_NAME]))).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return path


def load(path):
    return build_dataset("prepared", split="train", image_size=(SIZE, SIZE), num_channels=1, root=path)


def png_claiming(width, height):
    """A PNG whose header claims width x height 8-bit grey pixels, with almost no pixel data behind it."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 9)) + chunk(b"IEND", b"")
    )


def test_a_changed_image_is_refused_when_reading_and_when_naming_the_content(tmp_path):
    path = prepared_zip(tmp_path / "d.zip")
    other = png_bytes(torch.full((1, SIZE, SIZE), 7, dtype=torch.uint8))
    rewritten(path, replace={image_name(0): other})
    with pytest.raises(DatasetUnavailable, match=r"d\.zip: its images and labels have fingerprint .* changed after"):
        load(path)
    config = get_default_configs()
    config.data.update(dataset="prepared", root=path)
    with pytest.raises(DatasetUnavailable, match="changed after it was written"):  # the FID statistics' key
        build.data_fingerprint(config, "train")


def test_a_changed_zip_is_one_line_from_train_py(tmp_path):
    path = rewritten(prepared_zip(tmp_path / "d.zip"), replace={image_name(1): png_bytes(torch.zeros(1, 8, 8).byte())})
    command = [sys.executable, "train.py", "--config", "tests/configs/tiny.py", f"--workdir={tmp_path / 'run'}"]
    command += ["--config.data.dataset=prepared", f"--config.data.root={path}", "--config.data.num_channels=1"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and lines[-1].startswith("error: prepared dataset ") and path in lines[-1]
    assert "changed after it was written" in lines[-1] and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: {k: v for k, v in m.items() if k != "fingerprint"}, "field fingerprint='missing'"),
        (lambda m: dict(m, count="3"), "field count='3'; allowed: an integer >= 1"),
        (lambda m: dict(m, count=4), "member 00000003.png is missing"),
        (lambda m: dict(m, resolution=[SIZE]), "field resolution=[8]"),
        (lambda m: dict(m, labels=[1]), "has 1 labels for count=3 images"),
    ],
)
def test_a_bad_manifest_is_one_line_naming_the_zip(tmp_path, edit, message):
    path = rewritten(prepared_zip(tmp_path / "d.zip"), manifest=edit)
    with pytest.raises((DatasetUnavailable, UnreadableImage), match="d.zip") as error:
        load(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_manifest_that_is_not_json_is_one_line(tmp_path):
    path = rewritten(prepared_zip(tmp_path / "d.zip"), replace={MANIFEST_NAME: b"{not json"})
    with pytest.raises(DatasetUnavailable, match=r"d\.zip': dataset\.json is not valid JSON \(Expecting"):
        load(path)


def test_an_image_of_another_size_is_refused_before_it_is_decoded(tmp_path):
    path = prepared_zip(tmp_path / "d.zip", size=2 * SIZE)  # a consistent manifest, the images 16x16
    with pytest.raises(ValueError, match=r"member 00000000\.png is 16x16; the manifest says 8x8"):
        load(path)


def inflating_zip(path, lie=False):
    """A prepared zip whose image 0 is 128 MiB of zeros, deflated (the zip stays under 1 MiB); with ``lie`` its
    central directory claims the member inflates to 100 bytes."""
    prepared_zip(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members.items():
            archive.writestr(name, b"\0" * (1 << 27) if name == image_name(0) else payload)
    if lie:
        data = bytearray(open(path, "rb").read())
        entry = data.index(b"PK\x01\x02")  # the first central-directory entry: image 0
        data[entry + 24 : entry + 28] = (100).to_bytes(4, "little")  # its uncompressed size
        open(path, "wb").write(bytes(data))
    assert os.path.getsize(path) < 1 << 20
    return str(path)


def test_an_inflating_member_is_refused_by_its_declared_size_without_being_read(tmp_path, monkeypatch):
    path, opened, open_member = inflating_zip(tmp_path / "d.zip"), [], zipfile.ZipFile.open

    def recording_open(archive, member, *args, **kwargs):
        opened.append(getattr(member, "filename", member))
        return open_member(archive, member, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", recording_open)
    with pytest.raises(UnreadableImage, match=r"member 00000000\.png inflates to more than \d+ bytes"):
        load(path)
    assert image_name(0) not in opened


def test_a_member_that_lies_about_its_size_is_read_no_further_than_the_lie(tmp_path):
    with pytest.raises(UnreadableImage, match=r"member 00000000\.png is damaged \(Bad CRC-32"):
        load(inflating_zip(tmp_path / "d.zip", lie=True))


def test_a_decompression_bomb_is_one_line_everywhere(tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(100000, 100000))  # PIL's own guard fires first
    with pytest.raises(UnreadableImage, match=r"bomb.png': its header claims too many pixels .*allowed: at most"):
        read_image(str(bomb), "L")
    (tmp_path / "large.png").write_bytes(png_claiming(9000, 9000))  # below PIL's guard, above ours
    with pytest.raises(UnreadableImage, match=r"large.png': its header claims 9000x9000 pixels; allowed: at most"):
        read_image(str(tmp_path / "large.png"), "L")
    path = rewritten(prepared_zip(tmp_path / "d.zip"), replace={image_name(2): bomb.read_bytes()})
    with pytest.raises(UnreadableImage, match=r"d\.zip: member 00000002\.png: its header claims too many pixels"):
        load(path)
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(bomb, source / "bomb.png")
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(source / "fine.png")
    data = build_dataset("image_folder", split="train", image_size=(8, 8), num_channels=1, root=str(source))
    assert data[0].shape == (1, 8, 8) and "bomb.png: its header claims" in capsys.readouterr().err  # skipped
    run = tmp_path / "run"
    shutil.copytree(os.path.join(ROOT, "pretrained", "quickstart"), run)
    command = [sys.executable, "sample.py", f"--workdir={run}", f"--image={bomb}", "--resample_below=5"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and "claims too many pixels" in lines[0], result.stderr


def test_source_folders_skip_fifos_follow_file_links_and_not_folder_links(tmp_path, capsys):
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(source / "a.png")
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(outside / "b.png")
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(source / "sub" / "c.png")
    os.mkfifo(source / "pipe.png")
    os.symlink(outside / "b.png", source / "linked.png")
    os.symlink(outside, source / "linked_folder")
    os.symlink(tmp_path / "gone.png", source / "broken.png")
    assert list_images(str(source)) == ["a.png", "linked.png", os.path.join("sub", "c.png")]
    warnings = capsys.readouterr().err
    assert "pipe.png: not a regular file" in warnings and "broken.png: cannot be read" in warnings
    dest = tmp_path / "d.zip"
    command = [sys.executable, "-m", "scripts.dataset_tool", f"--source={source}", f"--dest={dest}", "--resolution=8"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)  # never blocks on the FIFO
    assert done.returncode == 0, done.stderr
    assert json.loads(zipfile.ZipFile(dest).read(MANIFEST_NAME))["count"] == 3


def test_a_sixteen_bit_grey_image_converts_by_value(tmp_path):
    path = tmp_path / "grey16.png"
    Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    assert np.asarray(read_image(str(path), "L")).max() == 128  # round(32768 / 257)
    folder = tmp_path / "src"
    folder.mkdir()
    shutil.copy(path, folder / "grey16.png")
    data = build_dataset("image_folder", split="train", image_size=(8, 8), num_channels=1, root=str(folder))
    assert int(data[0].min()) == int(data[0].max()) == 128


def test_a_damaged_member_of_a_source_zip_is_skipped_with_its_name(tmp_path, capsys):
    path = tmp_path / "src.zip"
    good = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(good, format="PNG")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.png", b"\0" * (1 << 29))  # inflates to 512 MiB: over the source-member bound
        archive.writestr("good.png", good.getvalue())
    data = build_dataset("image_folder", split="train", image_size=(8, 8), num_channels=1, root=str(path))
    assert data[0].shape == (1, 8, 8)  # big.png skipped, good.png in its place
    assert "src.zip: member big.png inflates to more than" in capsys.readouterr().err
