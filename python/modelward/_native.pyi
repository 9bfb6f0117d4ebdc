# Type stubs for the Rust extension (crates/modelward_py). Internal: use the `modelward` API.
import os
from typing import Any, Optional, Sequence, Tuple, Union

__version__: str

class Error(Exception): ...
class ConfigError(Error): ...
class ExplainError(Error): ...
class ConvertError(Error): ...

class ConvertRefused(ConvertError):
    findings_json: str
    reasons: list[str]
    # Set by modelward.convert: the findings as modelward.Finding objects.
    findings: list[Any]

def scan(
    inputs: Sequence[Union[str, "os.PathLike[str]", Tuple[str, bytes]]],
    config: Optional[Union[str, "os.PathLike[str]"]] = None,
) -> Tuple[list[str], Optional[str]]: ...
def explain(target: str) -> str: ...
def convert(
    src: Union[str, "os.PathLike[str]"],
    dst: Optional[Union[str, "os.PathLike[str]"]] = None,
    verify: bool = False,
    overwrite: bool = False,
    name: Optional[str] = None,
) -> str: ...
def tensors_only(path: Union[str, "os.PathLike[str]"]) -> bool: ...
def main(argv: Sequence[str]) -> int: ...
