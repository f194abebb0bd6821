"""The command a webhook job's ledger message gives to replay its delivery names the flow's folder as a
shell takes it: the flow file's path may be quoted ('my flows/orders.flow'), and splitting that text at
its last '/' gave "flowlang inbox 'my flows --replay ...", a quote left open."""

from types import SimpleNamespace
from typing import Any

from flowlang.compile.ledger_send import replay_command


def command(flow_file: str) -> str:
    run: Any = SimpleNamespace(flow_file=flow_file)
    return replay_command(run)


def test_the_folder_of_a_quoted_flow_path_is_quoted_whole() -> None:
    assert command("'my flows/orders.flow'").startswith("flowlang inbox 'my flows' --replay ID of the delivery")
    assert command("flows/orders.flow").startswith("flowlang inbox flows --replay ID")
    assert command("orders.flow").startswith("flowlang inbox . --replay ID")
