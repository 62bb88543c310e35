"""The official Python MCP client (mcp 2.3.0) against a running dust-mcp.

The server is started by `.ci/test` (or by hand) with `--no-auth --conformance-fixtures`; its
MCP URL comes from MCP_TEST_URL. Both connection modes are exercised: `legacy` (the initialize
handshake) and `auto` (a 2026-07-28 `server/discover` probe first, which must fall back cleanly).
"""

import os

import pytest
from mcp import Client

URL = os.environ.get("MCP_TEST_URL", "http://127.0.0.1:8080/mcp")
MODES = ["legacy", "auto"]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_lists_tools_with_descriptions_and_schemas(mode):
    async with Client(URL, mode=mode) as client:
        result = await client.list_tools()
        names = {t.name for t in result.tools}
        assert {"test_simple_text", "test_tool_with_progress"} <= names
        for tool in result.tools:
            assert tool.description, f"{tool.name} has no description"
            assert tool.input_schema.get("type") == "object"


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_call_reports_progress_before_the_result(mode):
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    async with Client(URL, mode=mode) as client:
        result = await client.call_tool(
            "test_tool_with_progress", {}, progress_callback=on_progress, read_timeout_seconds=30
        )
    assert not result.is_error
    assert [p for p, _, _ in seen] == [0, 50, 100]
    assert all(total == 100 for _, total, _ in seen)
    assert result.content[0].text == "Progress test completed"


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_tool_errors_are_results_not_exceptions(mode):
    async with Client(URL, mode=mode) as client:
        result = await client.call_tool("test_error_handling", {})
    assert result.is_error
    assert "intentionally" in result.content[0].text


@pytest.fixture
def anyio_backend():
    return "asyncio"
