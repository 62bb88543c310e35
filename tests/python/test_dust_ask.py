"""`dust_ask` through the official Python MCP client, against the demo workspace.

The server under test runs without Dust credentials, so its dust_* tools talk to the built-in
Dust simulator. The answer must stream: several progress notifications arrive before the result,
and the text they carry, joined, is exactly the final answer (nothing lost, nothing repeated).
"""

import os

import pytest
from mcp import Client

URL = os.environ.get("MCP_TEST_URL", "http://127.0.0.1:8080/mcp")


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_dust_ask_streams_the_answer_as_progress(mode):
    messages = []

    async def on_progress(progress, total, message):
        messages.append((progress, message))

    async with Client(URL, mode=mode) as client:
        result = await client.call_tool(
            "dust_ask",
            {"agent": "writer", "message": "Draft a two-line note about the team offsite"},
            progress_callback=on_progress,
            read_timeout_seconds=120,
        )
        assert not result.is_error, result.content
        answer = result.structured_content["answer"]
        assert result.content[0].text == answer
        assert result.structured_content["status"] == "succeeded"
        assert result.structured_content["agent"]["name"] == "writer"

        # The first notification announces the question; the rest carry the answer's text.
        assert messages[0][1].startswith("Asking writer")
        streamed = "".join(m for _, m in messages[1:])
        assert len(messages) >= 4, f"expected several chunks, got {len(messages)}"
        assert streamed == answer
        progress = [p for p, _ in messages]
        assert progress == sorted(progress) and len(set(progress)) == len(progress)

        # Dust holds the same final answer.
        transcript = await client.call_tool(
            "dust_get_conversation", {"conversation_id": result.structured_content["conversation_id"]}
        )
        assert answer in transcript.content[0].text


@pytest.fixture
def anyio_backend():
    return "asyncio"
