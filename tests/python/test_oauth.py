"""A real OAuth client (the Python `mcp` 2.3.0 `OAuthClientProvider`) against dust-mcp as its own
authorization server: discovery, dynamic registration, the sign-in page, the code exchange, a
tool call, then a forced refresh.

The CI server runs with `--no-auth`, so this test starts its own dust-mcp (the binary
`target/debug/dust-mcp`, or DUST_MCP_BIN) with a `[[users]]` entry on a free loopback port, and
stops it at the end. The test plays the browser: it GETs the authorize URL, reads the form,
POSTs the person's access token and the approval, and hands the code from the redirect back.
"""

import hashlib
import html
import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("DUST_MCP_BIN", str(ROOT / "target" / "debug" / "dust-mcp"))
PAT = "dmcp_python_oauth_test_token"
REDIRECT = "http://127.0.0.1:53999/callback"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """A dust-mcp with one user, on its own port and data dir; stopped at the end."""
    if not os.path.exists(BIN):
        pytest.fail(f"{BIN} is missing: run `cargo build --bin dust-mcp` first")
    tmp = tempfile.TemporaryDirectory()
    config = Path(tmp.name) / "config.toml"
    digest = hashlib.sha256(PAT.encode()).hexdigest()
    # No refresh grace: the test proves that presenting a rotated refresh token again is refused.
    config.write_text(
        f'[auth]\nrefresh_reuse_grace_secs = 0\n\n[[users]]\nname = "pat-user"\ntoken_sha256 = "{digest}"\n'
    )
    port = _free_port()
    log = open(Path(tmp.name) / "server.log", "wb")
    proc = subprocess.Popen(
        [BIN, "serve", "--bind", f"127.0.0.1:{port}", "--data-dir", str(Path(tmp.name) / "data"),
         "--config", str(config), "--conformance-fixtures"],
        stdout=log, stderr=subprocess.STDOUT,
        # The server reads DUST_MCP_* and DUST_* variables as configuration; start it clean.
        env={k: v for k, v in os.environ.items() if not k.startswith("DUST_")},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{base}/readyz", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("dust-mcp did not start:\n" + (Path(tmp.name) / "server.log").read_text())
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        tmp.cleanup()


class MemoryStorage:
    """Token storage in memory (the protocol `mcp.client.auth.TokenStorage`)."""

    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info):
        self.client = client_info


class Browser:
    """Plays the person: opens the sign-in page, approves with the PAT, keeps the redirect."""

    def __init__(self):
        self.redirect: str | None = None
        self.page: str = ""
        self.opens = 0

    async def open(self, authorization_url: str) -> None:
        self.opens += 1
        async with httpx2.AsyncClient(follow_redirects=False, timeout=10) as http:
            page = await http.get(authorization_url)
            assert page.status_code == 200, page.text
            self.page = page.text
            fields = {html.unescape(n): html.unescape(v)
                      for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page.text)}
            assert "csrf" in fields
            origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorization_url))
            answer = await http.post(f"{origin}/authorize", data={**fields, "token": PAT, "decision": "approve"})
            assert answer.status_code == 302, answer.text
            self.redirect = answer.headers["location"]

    async def callback(self) -> AuthorizationCodeResult:
        assert self.redirect and self.redirect.startswith(REDIRECT)
        query = parse_qs(urlsplit(self.redirect).query)
        return AuthorizationCodeResult(code=query["code"][0], state=query.get("state", [None])[0])


@pytest.mark.anyio
async def test_connects_with_oauth_calls_a_tool_and_refreshes(server):
    url = f"{server}/mcp"
    storage = MemoryStorage()
    browser = Browser()
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="python-oauth-test",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.open,
        callback_handler=browser.callback,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
            tools = await client.list_tools()
            names = {t.name for t in tools.tools}
            assert {"health_list_files", "test_simple_text"} <= names
            result = await client.call_tool("health_list_files", {})
            assert not result.is_error, result
    assert "python-oauth-test" in browser.page, "the sign-in page names the client"
    assert storage.client is not None and storage.client.client_id.startswith("dmcp_client_")
    first = storage.tokens
    assert first is not None and first.access_token.startswith("dmcp_at_") and first.refresh_token
    assert first.scope and "mcp" in first.scope.split()

    # Force a refresh: the provider believes its access token expired.
    provider.context.token_expiry_time = time.time() - 1
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
            result = await client.call_tool("test_simple_text", {})
            assert not result.is_error
    second = storage.tokens
    assert second.access_token != first.access_token, "a new access token came from the refresh"
    assert second.refresh_token != first.refresh_token, "the refresh token rotated"
    assert browser.opens == 1, "the refresh needed no second sign-in"

    # The rotated-away refresh token is dead (and presenting it revokes the grant).
    async with httpx2.AsyncClient(timeout=10) as http:
        reuse = await http.post(f"{server}/token", data={
            "grant_type": "refresh_token", "refresh_token": first.refresh_token,
            "client_id": storage.client.client_id})
        assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
        after = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={
            "Authorization": f"Bearer {second.access_token}", "Accept": "application/json, text/event-stream"})
        assert after.status_code == 401
        assert 'error="invalid_token"' in after.headers["www-authenticate"]


@pytest.fixture
def anyio_backend():
    return "asyncio"
