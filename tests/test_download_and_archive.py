import hashlib
import http.server
import tarfile
import threading
import zipfile

import pytest

from apt_uss.data.archive import extract_archive
from apt_uss.errors import AptUssError
from apt_uss.io.download import fetch_uri, sha256_file

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /data.bin with Range support, counting requests."""

    requests: list = []

    def do_GET(self):
        type(self).requests.append(self.headers.get("Range"))
        if self.path.split("?")[0] != "/data.bin":
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    _RangeHandler.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("APT_USS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_download_is_verified_cached_and_not_repeated(http_server):
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    path = fetch_uri(f"{http_server}/data.bin", sha256=digest)
    assert path.read_bytes() == PAYLOAD and path.parent.name == digest
    assert fetch_uri(f"{http_server}/data.bin") == path  # by URI
    assert fetch_uri(f"{http_server}/data.bin", sha256=digest.upper()) == path  # by checksum
    assert len(_RangeHandler.requests) == 1


def test_partial_download_resumes_where_it_stopped(http_server, cache):
    uri = f"{http_server}/data.bin"
    partial = cache / "partial" / (hashlib.sha256(uri.encode()).hexdigest()[:24] + ".part")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(PAYLOAD[:300000])
    assert fetch_uri(uri).read_bytes() == PAYLOAD
    assert _RangeHandler.requests == ["bytes=300000-"]
    assert not partial.exists()


def test_checksum_mismatch_names_both_digests_and_removes_the_download(http_server, cache):
    wrong = "0" * 64
    with pytest.raises(AptUssError) as err:
        fetch_uri(f"{http_server}/data.bin", sha256=wrong)
    assert wrong in str(err.value) and hashlib.sha256(PAYLOAD).hexdigest() in str(err.value)
    assert list((cache / "partial").iterdir()) == []
    assert not (cache / "sha256").exists()


def test_a_presigned_urls_signature_is_never_logged_or_shown(http_server, caplog):
    signed = f"{http_server}/data.bin?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=5ecre7"
    with caplog.at_level("INFO", logger="apt_uss.io.download"):
        assert fetch_uri(signed).read_bytes() == PAYLOAD
        fetch_uri(signed)  # from the cache
    assert "using the cached copy" in caplog.text and "downloaded" in caplog.text
    with pytest.raises(AptUssError) as err:
        fetch_uri(signed.replace("data.bin", "absent.bin"))
    for text in (caplog.text, str(err.value)):
        assert "5ecre7" not in text and "AKIAEXAMPLE" not in text
    assert str(err.value) == f"{http_server}/absent.bin?***: HTTP 404 Not Found"


def test_missing_remote_file_and_bad_scheme(http_server):
    with pytest.raises(AptUssError, match="HTTP 404"):
        fetch_uri(f"{http_server}/absent.zip")
    with pytest.raises(AptUssError, match="unsupported scheme 'ftp'"):
        fetch_uri("ftp://host/x.zip")


def test_local_file_checked_in_place(tmp_path):
    f = tmp_path / "a.zip"
    f.write_bytes(b"abc")
    assert fetch_uri(f.as_uri(), sha256=sha256_file(f)) == f
    with pytest.raises(AptUssError, match="checksum mismatch"):
        fetch_uri(str(f), sha256="1" * 64)


def test_s3_download_through_seaweedfs(s3_env, tmp_path):
    from apt_uss.io import storage

    (tmp_path / "x.bin").write_bytes(PAYLOAD)
    storage.ensure_bucket("s3://apt-fetch")
    uri = storage.upload_run_files("s3://apt-fetch", "data", {"x.bin": tmp_path / "x.bin"})["x.bin"]
    assert fetch_uri(uri, sha256=hashlib.sha256(PAYLOAD).hexdigest()).read_bytes() == PAYLOAD
    with pytest.raises(AptUssError, match="does not exist"):
        fetch_uri("s3://apt-fetch/data/absent.bin")


def _zip(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)


def test_archives_extract(tmp_path):
    _zip(tmp_path / "ok.zip", {"top/meta/esc50.csv": "x", "top/audio/a.wav": "y"})
    extract_archive(tmp_path / "ok.zip", tmp_path / "z")
    assert (tmp_path / "z" / "top" / "audio" / "a.wav").read_text() == "y"
    with tarfile.open(tmp_path / "ok.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "z" / "top", arcname="top")
    extract_archive(tmp_path / "ok.tar.gz", tmp_path / "t")
    assert (tmp_path / "t" / "top" / "meta" / "esc50.csv").read_text() == "x"


@pytest.mark.parametrize("name, reason", [("../evil.txt", "'..'"), ("/etc/evil.txt", "absolute"),
                                          ("a/../../evil.txt", "'..'")])
def test_zip_entries_escaping_the_folder_are_refused(tmp_path, name, reason):
    _zip(tmp_path / "bad.zip", {"fine.txt": "ok", name: "evil"})
    with pytest.raises(AptUssError, match=f"refusing entry '{name}': {reason}"):
        extract_archive(tmp_path / "bad.zip", tmp_path / "out")
    assert not (tmp_path / "out" / "fine.txt").exists()  # checked before anything is written
    assert not (tmp_path / "evil.txt").exists()


def test_tar_links_are_refused(tmp_path):
    with tarfile.open(tmp_path / "link.tar", "w") as tf:
        info = tarfile.TarInfo("audio/a.wav")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(AptUssError, match="refusing entry 'audio/a.wav': link"):
        extract_archive(tmp_path / "link.tar", tmp_path / "out")


def test_not_an_archive(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"not an archive")
    with pytest.raises(AptUssError, match="neither a zip nor a tar"):
        extract_archive(tmp_path / "x.zip", tmp_path / "out")
