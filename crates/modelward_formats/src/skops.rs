//! skops `.skops` files: a zip of `schema.json` (a tree of nodes) and the arrays it names.
//! Loading resolves every node's `__module__` + `__class__` with `importlib` (an `ObjectNode`
//! instantiates it, a `TypeNode`/`FunctionNode` returns the object, a `MethodNode` takes an
//! attribute of another node, an `OperatorFuncNode` builds an `operator` gadget). This module
//! finds those names; the scanner judges them with the global-name policy, like pickle globals.

use crate::json::{self, Node, Options, Value};

/// Largest `schema.json` parsed.
pub const MAX_SCHEMA: usize = 16 << 20;
/// Most values in a schema (bounds the tree's memory).
pub const MAX_VALUES: usize = 2_000_000;
/// Deepest nesting followed.
pub const MAX_DEPTH: usize = 256;
/// Most names returned.
pub const MAX_REFS: usize = 10_000;

/// A name a skops loader resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkopsRef {
    /// `__module__`.
    pub module: String,
    /// `__class__` (for a `MethodNode`, `Class.method`).
    pub name: String,
    /// The node type (`ObjectNode`, `FunctionNode`, ...).
    pub loader: String,
    /// Byte offset of the node in `schema.json`.
    pub offset: u64,
}

impl SkopsRef {
    /// How the loader uses the name, in words.
    pub fn role(&self) -> &'static str {
        match self.loader.as_str() {
            "ObjectNode" => "instantiates",
            "ConstructorFromReduceNode" | "OperatorFuncNode" | "PartialNode" => "calls",
            "MethodNode" => "takes the method",
            "FunctionNode" => "loads the function",
            "TypeNode" => "loads the type or function",
            _ => "resolves",
        }
    }
}

/// Whether a parsed `schema.json` is skops' (a root node with `__loader__`, `__module__` and
/// `__class__`, and skops' `protocol`).
pub fn looks_like_schema(text: &str) -> bool {
    let head = &text[..text.len().min(4096)];
    head.contains("\"__loader__\"") && head.contains("\"__module__\"") && head.contains("\"__class__\"")
}

/// Every name the schema makes skops resolve.
pub fn refs(text: &str) -> Result<Vec<SkopsRef>, String> {
    if text.len() > MAX_SCHEMA {
        return Err(format!("schema.json is over {} MiB", MAX_SCHEMA >> 20));
    }
    let parsed = json::parse(
        text,
        Options {
            max_depth: MAX_DEPTH,
            python: true,
            max_values: MAX_VALUES,
        },
    )
    .map_err(|e| format!("{e:?}"))?;
    let mut out = Vec::new();
    walk(&parsed.root, &mut out, 0);
    Ok(out)
}

fn walk(node: &Node<'_>, out: &mut Vec<SkopsRef>, depth: usize) {
    if depth > MAX_DEPTH || out.len() >= MAX_REFS {
        return;
    }
    match &node.value {
        Value::Obj(members) => {
            let loader = node.get("__loader__").and_then(Node::as_str);
            let module = node.get("__module__").and_then(Node::as_str);
            let class = node.get("__class__").and_then(Node::as_str);
            if let (Some(loader), Some(module), Some(class)) = (loader, module, class) {
                out.push(SkopsRef {
                    module: module.to_owned(),
                    name: class.to_owned(),
                    loader: loader.to_owned(),
                    offset: node.at as u64,
                });
                // A method of another node's type: `getattr(obj, func)`.
                if loader == "MethodNode"
                    && let Some(content) = node.get("content")
                    && let Some(func) = content.get("func").and_then(Node::as_str)
                    && let Some(obj) = content.get("obj")
                    && let (Some(om), Some(oc)) = (
                        obj.get("__module__").and_then(Node::as_str),
                        obj.get("__class__").and_then(Node::as_str),
                    )
                {
                    out.push(SkopsRef {
                        module: om.to_owned(),
                        name: format!("{oc}.{func}"),
                        loader: loader.to_owned(),
                        offset: content.at as u64,
                    });
                }
            }
            for m in members {
                walk(&m.value, out, depth + 1);
            }
        }
        Value::Arr(items) => {
            for i in items {
                walk(i, out, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_every_node_kind_are_found() {
        let text = r#"{"__class__": "FunctionTransformer", "__module__": "sklearn.preprocessing._function_transformer",
            "__loader__": "ObjectNode", "content": {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
            "content": {"func": {"__class__": "system", "__module__": "posix", "__loader__": "TypeNode"},
                        "m": {"__class__": "method", "__module__": "builtins", "__loader__": "MethodNode",
                              "content": {"func": "system", "obj": {"__class__": "os", "__module__": "builtins", "__loader__": "TypeNode"}}}}}}"#;
        assert!(looks_like_schema(text));
        let r = refs(text).unwrap();
        let names: Vec<String> = r.iter().map(|r| format!("{}.{}", r.module, r.name)).collect();
        assert!(names.contains(&"posix.system".to_owned()), "{names:?}");
        assert!(names.contains(&"builtins.os.system".to_owned()), "{names:?}");
        assert_eq!(r[0].role(), "instantiates");
        assert!(refs("{").is_err());
        assert!(!looks_like_schema(r#"{"a": 1}"#));
    }
}
