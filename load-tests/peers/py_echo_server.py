"""Minimal MCP server on the official Python SDK (mcp 2.3.0): one `echo` tool over
Streamable HTTP on 127.0.0.1. A peer for load-tests/compare, run as
`python py_echo_server.py PORT`; SDK defaults otherwise (stateful sessions, SSE answers,
uvicorn with one worker, access log on), as a user would deploy it.
"""

import sys

from mcp.server.mcpserver import MCPServer

mcp = MCPServer("py-echo")


@mcp.tool()
def echo(message: str) -> str:
    """Echo the message back."""
    return message


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    mcp.run("streamable-http", host="127.0.0.1", port=port)
