//! Jinja chat templates (GGUF `tokenizer.chat_template*`, `tokenizer_config.json`
//! `chat_template`): server-side template injection.
//!
//! A consumer that renders a template with plain Jinja2 (not a sandbox) runs whatever Python the
//! template reaches: `().__class__.__base__.__subclasses__()`, `lipsum.__globals__.os`,
//! `cycler.__init__.__globals__`, `|attr('\x5f\x5fclass\x5f\x5f')`, names built with `~`
//! (CVE-2024-34359 "Llama Drama" and its successors). [`analyse`] parses the template with
//! minijinja's parser (never renders it) and walks the whole AST, every branch, macro and named
//! block, for those shapes. Real templates use `namespace()`, loops, `raise_exception`, `tojson`
//! and `strftime_now`, which are not findings.
//!
//! A template that minijinja cannot parse is itself a finding (Python's Jinja2 may still run it),
//! and its tokens are still searched for internals.

use crate::json::clip;
use minijinja::machinery::ast::{self, CallArg, Expr, Stmt};
use minijinja::machinery::{Span, Token};
use minijinja::syntax::SyntaxConfig;
use modelward_diagnostics::Fact;
use std::collections::HashSet;

/// Longest template analysed (real chat templates are 0.3 to 12 KB).
pub const MAX_TEMPLATE_LEN: usize = 1 << 20;
/// Most tokens in one `{{ }}` or `{% %}` block: more is not a chat template but an attempt to
/// exhaust the parser (real blocks have tens).
pub const MAX_BLOCK_TOKENS: usize = 4096;
/// Deepest AST walk.
pub const MAX_WALK_DEPTH: usize = 1024;
/// Stack of the thread that parses and walks (minijinja's parser recurses up to 150 levels).
pub const PARSE_STACK: usize = 64 << 20;
/// Facts of one rule reported per template before the rest are summarised in one more fact.
pub const MAX_REPORTED: usize = 16;
/// Characters of template source shown in evidence.
const EVIDENCE_CHARS: usize = 160;

/// Python internals that SSTI payloads walk through (without the dunder underscores).
const DUNDERS: &[&str] = &[
    "class",
    "mro",
    "base",
    "bases",
    "subclasses",
    "globals",
    "builtins",
    "import",
    "init",
    "dict",
    "getattribute",
    "getattr",
    "code",
    "func",
    "self",
    "module",
    "loader",
    "spec",
    "reduce",
    "reduce_ex",
    "call",
    "closure",
    "defaults",
    "kwdefaults",
    "qualname",
    "name",
    "new",
    "setattr",
    "delattr",
    "traceback",
    "frame",
    "file",
    "enter",
    "exit",
    "getitem",
];

/// Non-dunder attributes of frames, generators, functions and code objects.
const INTERNAL_ATTRS: &[&str] = &[
    "mro",
    "f_globals",
    "f_locals",
    "f_builtins",
    "f_back",
    "f_code",
    "gi_frame",
    "gi_code",
    "cr_frame",
    "cr_code",
    "ag_frame",
    "ag_code",
    "tb_frame",
    "tb_next",
    "func_globals",
    "func_code",
    "im_func",
    "co_code",
    "co_consts",
];

/// Globals of Jinja2 (and Flask) whose internals reach `os` and `builtins`. `namespace` is not
/// here: real templates use it, and only dunder access through it matters.
const GADGETS: &[&str] = &[
    "cycler",
    "joiner",
    "lipsum",
    "self",
    "config",
    "request",
    "url_for",
    "get_flashed_messages",
    "session",
];

/// Filters that look an attribute up by name: `(filter, keyword, positional index)`.
const ATTRIBUTE_FILTERS: &[(&str, &str, Option<usize>)] = &[
    ("map", "attribute", None),
    ("selectattr", "attribute", Some(0)),
    ("rejectattr", "attribute", Some(0)),
    ("groupby", "attribute", Some(0)),
    ("sort", "attribute", None),
    ("sum", "attribute", None),
    ("unique", "attribute", None),
    ("min", "attribute", None),
    ("max", "attribute", None),
];

/// Whether an attribute name reaches Python internals: dunder-shaped, name-mangled
/// (`_TemplateReference__context`) or a frame/function internal.
pub fn is_internal_name(name: &str) -> bool {
    name.contains("__") || INTERNAL_ATTRS.contains(&name)
}

/// A known dunder (`__globals__`) or mangled name inside a string, if any.
fn internal_in_string(s: &str) -> Option<String> {
    let mut rest = s;
    while let Some(i) = rest.find("__") {
        let after = &rest[i + 2..];
        let word: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let bare = word.trim_end_matches('_');
        if DUNDERS.contains(&bare) {
            return Some(format!("__{bare}__"));
        }
        if word.is_empty() {
            rest = after;
        } else {
            rest = &after[word.len()..];
        }
    }
    if s.contains("_TemplateReference__") || s.contains("_Context__") {
        return Some("a name-mangled Jinja2 internal".to_owned());
    }
    None
}

/// Analyses a chat template; offsets are byte offsets in `template`.
pub fn analyse(template: &str) -> Vec<Fact> {
    analyse_capped(template, MAX_REPORTED)
}

/// [`analyse`] with at most `cap` facts per rule (the scanner passes `max-findings-per-rule`).
pub fn analyse_capped(template: &str, cap: usize) -> Vec<Fact> {
    if template.len() > MAX_TEMPLATE_LEN {
        return vec![
            Fact::new(
                "TPL106",
                format!(
                    "the template is {} bytes, over the {MAX_TEMPLATE_LEN}-byte limit: not analysed",
                    template.len()
                ),
            )
            .at(0),
        ];
    }
    let source = blank_hf_tags(template);
    // `None`: the parser panicked, or no parser thread could be had and the one here did not
    // return either.
    let result = match parser_thread::run(source, cap) {
        Ok(result) => result,
        // No thread to be had: parse here (the token check bounds the depth anyway).
        Err(source) => Some(analyse_source(&source, cap)),
    };
    result.unwrap_or_else(|| {
        vec![
            Fact::new(
                "TPL106",
                "the template parser failed on this template: not analysed",
            )
            .at(0),
        ]
    })
}

/// minijinja's parser recurses, so templates are parsed on a thread with a [`PARSE_STACK`]
/// stack. Spawning one per template cost more than the parse (a 64 MiB mapping made and torn
/// down each time), so each calling thread keeps one long-lived parser thread and hands it work.
mod parser_thread {
    use super::{PARSE_STACK, analyse_source};
    use modelward_diagnostics::Fact;
    use std::cell::RefCell;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

    /// A template to analyse and where to send the facts (`None` if the parser panicked).
    type Job = (String, usize, SyncSender<Option<Vec<Fact>>>);

    thread_local! {
        /// This thread's parser; it exits when the sender is dropped with this thread.
        static PARSER: RefCell<Option<Sender<Job>>> = const { RefCell::new(None) };
    }

    fn serve(jobs: Receiver<Job>) {
        for (source, cap, reply) in jobs {
            let facts = catch_unwind(AssertUnwindSafe(|| analyse_source(&source, cap))).ok();
            let _ = reply.send(facts);
        }
    }

    fn spawn() -> Option<Sender<Job>> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("modelward-template".into())
            .stack_size(PARSE_STACK)
            .spawn(move || serve(rx))
            .ok()?;
        Some(tx)
    }

    /// The facts for `source` from this thread's parser thread, or `source` back when no parser
    /// thread can be started.
    pub(super) fn run(source: String, cap: usize) -> Result<Option<Vec<Fact>>, String> {
        PARSER.with(|slot| {
            let mut slot = slot.borrow_mut();
            if slot.is_none() {
                *slot = spawn();
            }
            let Some(parser) = slot.as_ref() else {
                return Err(source);
            };
            let (reply, answer) = mpsc::sync_channel(1);
            if let Err(mpsc::SendError((source, _, _))) = parser.send((source, cap, reply)) {
                // The thread is gone (it cannot be: panics are caught); start afresh next time.
                *slot = None;
                return Err(source);
            }
            Ok(answer.recv().ok().flatten())
        })
    }
}

/// Hugging Face's `{% generation %}` / `{% endgeneration %}` (an extension that marks assistant
/// tokens) replaced by spaces of the same length, so offsets stay true.
fn blank_hf_tags(template: &str) -> String {
    let mut out = template.to_owned();
    let bytes = template.as_bytes();
    let mut i = 0;
    while let Some(found) = template[i..].find("{%") {
        let start = i + found;
        let mut j = start + 2;
        if let Some(b'-' | b'+') = bytes.get(j) {
            j += 1;
        }
        while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        let word_start = j;
        while bytes.get(j).is_some_and(|b| b.is_ascii_alphabetic()) {
            j += 1;
        }
        let word = &template[word_start..j];
        while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if let Some(b'-' | b'+') = bytes.get(j) {
            j += 1;
        }
        if (word == "generation" || word == "endgeneration") && template[j..].starts_with("%}") {
            let end = j + 2;
            out.replace_range(start..end, &" ".repeat(end - start));
            i = end;
        } else {
            i = start + 2;
        }
    }
    out
}

fn analyse_source(source: &str, cap: usize) -> Vec<Fact> {
    let mut w = Walker {
        src: source,
        facts: modelward_diagnostics::FactCollector::new(cap),
        gadget_uses: Vec::new(),
        assigned: HashSet::new(),
    };
    // Token pass: bounds the work of the parser and finds internals even where it fails.
    let mut in_block = 0usize;
    let mut token_error = None;
    let mut lexical: Vec<(String, Span)> = Vec::new();
    for tok in minijinja::machinery::tokenize(source, false, SyntaxConfig::default()) {
        match tok {
            Ok((tok, span)) => match tok {
                Token::VariableStart | Token::BlockStart => in_block = 0,
                Token::TemplateData(_) | Token::VariableEnd | Token::BlockEnd => {}
                Token::Ident(id) => {
                    in_block += 1;
                    if is_internal_name(id) {
                        lexical.push((id.to_owned(), span));
                    }
                }
                Token::Str(s) => {
                    in_block += 1;
                    if let Some(n) = internal_in_string(s) {
                        lexical.push((n, span));
                    }
                }
                Token::String(s) => {
                    in_block += 1;
                    if let Some(n) = internal_in_string(&s) {
                        lexical.push((n, span));
                    }
                }
                _ => in_block += 1,
            },
            Err(e) => {
                token_error = Some(e);
                break;
            }
        }
        if in_block > MAX_BLOCK_TOKENS {
            return vec![
                Fact::new(
                    "TPL106",
                    format!("a template block has more than {MAX_BLOCK_TOKENS} tokens: not analysed"),
                )
                .at(0),
            ];
        }
    }
    let parsed = match token_error {
        Some(e) => Err(e),
        None => minijinja::machinery::parse(source, "<template>", SyntaxConfig::default()),
    };
    match parsed {
        Ok(tree) => {
            w.stmt(&tree, 0);
            let gadget_uses = std::mem::take(&mut w.gadget_uses);
            for (id, span) in gadget_uses {
                if !w.assigned.contains(id) {
                    let f = Fact::new(
                        "TPL103",
                        format!(
                            "the template uses the Jinja2 global {id:?}, whose internals reach Python's os and builtins"
                        ),
                    );
                    w.push_at(f, span);
                }
            }
        }
        Err(e) => {
            let at = e.range().map_or(0, |r| r.start);
            let what = e.detail().unwrap_or("syntax error");
            let snippet = &source[floor_char(source, at)..];
            w.push(
                Fact::new(
                    "TPL106",
                    format!(
                        "minijinja cannot parse the template ({}); Python's Jinja2 may still render it",
                        clip(what, 120)
                    ),
                )
                .at(at as u64)
                .evidence(clip(snippet, 80)),
            );
            for (name, span) in lexical {
                let f = Fact::new(
                    "TPL101",
                    format!("the unparseable template names the Python internal {name}"),
                );
                w.push_at(f, span);
            }
        }
    }
    w.finish()
}

struct Walker<'s> {
    src: &'s str,
    facts: modelward_diagnostics::FactCollector,
    gadget_uses: Vec<(&'s str, Span)>,
    assigned: HashSet<&'s str>,
}

impl<'s> Walker<'s> {
    fn push(&mut self, fact: Fact) {
        self.facts.push(fact);
    }

    /// Pushes a fact located at `span`, with the source there as evidence.
    fn push_at(&mut self, fact: Fact, span: Span) {
        let start = (span.start_offset as usize).min(self.src.len());
        let end = (span.end_offset as usize).clamp(start, self.src.len());
        let text = &self.src[floor_char(self.src, start)..floor_char(self.src, end)];
        self.push(fact.at(start as u64).evidence(clip(text, EVIDENCE_CHARS)));
    }

    fn finish(self) -> Vec<Fact> {
        self.facts.finish()
    }

    fn too_deep(&mut self, depth: usize, span: Span) -> bool {
        if depth > MAX_WALK_DEPTH {
            let f = Fact::new(
                "TPL106",
                format!("the template nests deeper than {MAX_WALK_DEPTH} levels: the rest was not analysed"),
            );
            self.push_at(f, span);
            true
        } else {
            false
        }
    }

    fn stmts(&mut self, body: &[Stmt<'s>], depth: usize) {
        for s in body {
            self.stmt(s, depth + 1);
        }
    }

    fn assign_target(&mut self, target: &Expr<'s>) {
        match target {
            Expr::Var(v) => {
                self.assigned.insert(v.id);
            }
            Expr::Tuple(t) => t.items.iter().for_each(|e| self.assign_target(e)),
            Expr::List(l) => l.items.iter().for_each(|e| self.assign_target(e)),
            _ => {}
        }
    }

    fn multi_template(&mut self, what: &str, name: &Expr<'s>, span: Span) {
        let target = match name.as_const() {
            Some(v) => v.as_str().map_or_else(|| v.to_string(), |s| format!("{s:?}")),
            None => "a computed name".to_owned(),
        };
        let f = Fact::new(
            "TPL105",
            format!(
                "the template {what} another template ({}): chat templates are standalone",
                clip(&target, 80)
            ),
        );
        self.push_at(f, span);
    }

    fn stmt(&mut self, stmt: &Stmt<'s>, depth: usize) {
        match stmt {
            Stmt::Template(t) => {
                if !self.too_deep(depth, t.span()) {
                    self.stmts(&t.children, depth);
                }
            }
            Stmt::EmitExpr(e) => self.expr(&e.expr, depth + 1, false),
            Stmt::EmitRaw(_) => {}
            Stmt::ForLoop(f) => {
                if self.too_deep(depth, f.span()) {
                    return;
                }
                self.assign_target(&f.target);
                self.expr(&f.target, depth + 1, false);
                self.expr(&f.iter, depth + 1, false);
                if let Some(e) = &f.filter_expr {
                    self.expr(e, depth + 1, false);
                }
                self.stmts(&f.body, depth);
                self.stmts(&f.else_body, depth);
            }
            Stmt::IfCond(c) => {
                if self.too_deep(depth, c.span()) {
                    return;
                }
                self.expr(&c.expr, depth + 1, false);
                self.stmts(&c.true_body, depth);
                self.stmts(&c.false_body, depth);
            }
            Stmt::WithBlock(w) => {
                if self.too_deep(depth, w.span()) {
                    return;
                }
                for (target, value) in &w.assignments {
                    self.assign_target(target);
                    self.expr(value, depth + 1, false);
                }
                self.stmts(&w.body, depth);
            }
            Stmt::Set(s) => {
                self.assign_target(&s.target);
                self.expr(&s.target, depth + 1, false);
                self.expr(&s.expr, depth + 1, false);
            }
            Stmt::SetBlock(s) => {
                if self.too_deep(depth, s.span()) {
                    return;
                }
                self.assign_target(&s.target);
                if let Some(f) = &s.filter {
                    self.expr(f, depth + 1, false);
                }
                self.stmts(&s.body, depth);
            }
            Stmt::AutoEscape(a) => {
                if self.too_deep(depth, a.span()) {
                    return;
                }
                self.expr(&a.enabled, depth + 1, false);
                self.stmts(&a.body, depth);
            }
            Stmt::FilterBlock(f) => {
                if self.too_deep(depth, f.span()) {
                    return;
                }
                self.expr(&f.filter, depth + 1, false);
                self.stmts(&f.body, depth);
            }
            Stmt::Block(b) => {
                if !self.too_deep(depth, b.span()) {
                    self.stmts(&b.body, depth);
                }
            }
            Stmt::Import(i) => {
                self.multi_template("imports", &i.expr, i.span());
                self.assign_target(&i.name);
                self.expr(&i.expr, depth + 1, false);
            }
            Stmt::FromImport(i) => {
                self.multi_template("imports names from", &i.expr, i.span());
                for (name, alias) in &i.names {
                    self.assign_target(alias.as_ref().unwrap_or(name));
                }
                self.expr(&i.expr, depth + 1, false);
            }
            Stmt::Extends(e) => {
                self.multi_template("extends", &e.name, e.span());
                self.expr(&e.name, depth + 1, false);
            }
            Stmt::Include(i) => {
                self.multi_template("includes", &i.name, i.span());
                self.expr(&i.name, depth + 1, false);
            }
            Stmt::Macro(m) => {
                if self.too_deep(depth, m.span()) {
                    return;
                }
                self.macro_decl(m, depth);
            }
            Stmt::CallBlock(c) => {
                if self.too_deep(depth, c.span()) {
                    return;
                }
                self.call(&c.call, depth + 1, false);
                self.macro_decl(&c.macro_decl, depth);
            }
            Stmt::Continue(_) | Stmt::Break(_) => {}
            Stmt::Do(d) => self.call(&d.call, depth + 1, false),
        }
    }

    fn macro_decl(&mut self, m: &ast::Macro<'s>, depth: usize) {
        self.assigned.insert(m.name);
        for a in &m.args {
            self.assign_target(a);
        }
        for d in &m.defaults {
            self.expr(d, depth + 1, false);
        }
        self.stmts(&m.body, depth);
    }

    fn args(&mut self, args: &[CallArg<'s>], depth: usize, quiet: bool) {
        for a in args {
            // `dict(__cl=1, ass__=1)|join` spells `__class__` in keyword names.
            if let CallArg::Kwarg(name, e) = a
                && !quiet
                && (name.starts_with("__") || name.ends_with("__"))
            {
                let at = e.span().start_offset as u64;
                self.push(
                    Fact::new(
                        "TPL104",
                        format!("a keyword argument name spells part of a Python internal: {name}"),
                    )
                    .at(at)
                    .evidence(format!("{name}=…")),
                );
            }
            match a {
                CallArg::Pos(e) | CallArg::Kwarg(_, e) | CallArg::PosSplat(e) | CallArg::KwargSplat(e) => {
                    self.expr(e, depth, quiet);
                }
            }
        }
    }

    fn call(&mut self, call: &ast::Call<'s>, depth: usize, quiet: bool) {
        self.expr(&call.expr, depth + 1, quiet);
        self.args(&call.args, depth + 1, quiet);
    }

    /// Reports Python-internal access at `span` (the whole expression), naming every internal
    /// in it (the caller keeps the children quiet).
    fn internal(&mut self, expr: &Expr<'s>, span: Span, how: &str) {
        let mut names = Vec::new();
        internals_in(expr, &mut names, 0);
        if names.is_empty() {
            names.push(how.to_owned());
        }
        names.dedup();
        let root = root_var(expr).filter(|r| GADGETS.contains(r) || *r == "namespace");
        let via = root.map_or_else(String::new, |r| format!(" through {r}"));
        let f = Fact::new(
            "TPL101",
            format!(
                "the template reaches Python internals{via}: {}",
                clip(&names.join(", "), 120)
            ),
        );
        self.push_at(f, span);
    }

    /// Walks an expression. `quiet`: an enclosing node already reported this expression.
    fn expr(&mut self, expr: &Expr<'s>, depth: usize, quiet: bool) {
        if depth > MAX_WALK_DEPTH {
            self.too_deep(depth, expr.span());
            return;
        }
        let d = depth + 1;
        match expr {
            Expr::Var(v) => {
                if !quiet && GADGETS.contains(&v.id) {
                    self.gadget_uses.push((v.id, v.span()));
                }
            }
            Expr::Const(c) => {
                if quiet {
                    return;
                }
                if let Some(s) = c.value.as_str() {
                    self.string_constant(s, c.span(), "a string constant");
                }
            }
            Expr::Slice(s) => {
                self.expr(&s.expr, d, quiet);
                for e in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(e, d, quiet);
                }
            }
            Expr::UnaryOp(u) => self.expr(&u.expr, d, quiet),
            Expr::BinOp(b) => {
                if !quiet
                    && matches!(
                        b.op,
                        ast::BinOpKind::Concat | ast::BinOpKind::Add | ast::BinOpKind::Mul
                    )
                    && let Some(v) = expr.as_const()
                    && let Some(s) = v.as_str()
                    && internal_in_string(s).is_some()
                {
                    self.string_constant(s, b.span(), "a string built from pieces");
                    self.expr(&b.left, d, true);
                    self.expr(&b.right, d, true);
                    return;
                }
                self.expr(&b.left, d, quiet);
                self.expr(&b.right, d, quiet);
            }
            Expr::Compare(c) => {
                self.expr(&c.expr, d, quiet);
                for op in &c.ops {
                    self.expr(&op.expr, d, quiet);
                }
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr, d, quiet);
                self.expr(&i.true_expr, d, quiet);
                if let Some(e) = &i.false_expr {
                    self.expr(e, d, quiet);
                }
            }
            Expr::Filter(f) => {
                let mut quiet = quiet;
                if !quiet
                    && f.name == "format"
                    && let Some(v) = f.expr.as_ref().and_then(Expr::as_const)
                    && let Some(s) = v.as_str()
                    && char_code_format(s)
                {
                    self.char_codes(s, chain_span(expr));
                }
                if !quiet {
                    quiet = self.filter(f, expr);
                }
                if let Some(e) = &f.expr {
                    self.expr(e, d, quiet);
                }
                self.args(&f.args, d, quiet);
            }
            Expr::Test(t) => {
                self.expr(&t.expr, d, quiet);
                self.args(&t.args, d, quiet);
            }
            Expr::GetAttr(g) => {
                let mut quiet = quiet;
                if !quiet && is_internal_name(g.name) {
                    self.internal(expr, chain_span(expr), g.name);
                    quiet = true;
                }
                self.expr(&g.expr, d, quiet);
            }
            Expr::GetItem(g) => {
                let mut quiet = quiet;
                if !quiet
                    && let Some(name) = g.subscript_expr.as_const()
                    && let Some(name) = name.as_str()
                    && is_internal_name(name)
                {
                    self.internal(expr, chain_span(expr), name);
                    quiet = true;
                }
                self.expr(&g.expr, d, quiet);
                self.expr(&g.subscript_expr, d, quiet);
            }
            Expr::Call(c) => {
                // `'{:c}{:c}'.format(95, 95)` builds characters from their codes.
                if !quiet
                    && let Expr::GetAttr(g) = &c.expr
                    && matches!(g.name, "format" | "format_map")
                    && let Some(v) = g.expr.as_const()
                    && let Some(s) = v.as_str()
                    && char_code_format(s)
                {
                    self.char_codes(s, chain_span(expr));
                }
                self.expr(&c.expr, d, quiet);
                self.args(&c.args, d, quiet);
            }
            Expr::List(l) => l.items.iter().for_each(|e| self.expr(e, d, quiet)),
            Expr::Tuple(t) => t.items.iter().for_each(|e| self.expr(e, d, quiet)),
            Expr::Map(m) => {
                for e in m.keys.iter().chain(m.values.iter()) {
                    self.expr(e, d, quiet);
                }
            }
        }
    }

    /// `attr` and the attribute-taking filters; returns whether the expression was reported.
    fn filter(&mut self, f: &ast::Filter<'s>, whole: &Expr<'s>) -> bool {
        let positional: Vec<&Expr<'s>> = f
            .args
            .iter()
            .filter_map(|a| match a {
                CallArg::Pos(e) => Some(e),
                _ => None,
            })
            .collect();
        let keyword = |k: &str| {
            f.args.iter().find_map(|a| match a {
                CallArg::Kwarg(name, e) if *name == k => Some(e),
                _ => None,
            })
        };
        // The expression that names the attribute, if this filter looks one up.
        let name_expr: Option<&Expr<'s>> = match f.name {
            "attr" => positional.first().copied(),
            // `|map('attr', name)`, `|select('attr', ...)` apply the attr filter.
            "map" | "select" | "reject" | "selectattr" | "rejectattr"
                if positional
                    .first()
                    .and_then(|e| e.as_const())
                    .is_some_and(|v| v.as_str() == Some("attr")) =>
            {
                positional.get(1).copied()
            }
            name => ATTRIBUTE_FILTERS
                .iter()
                .find(|(n, _, _)| *n == name)
                .and_then(|(_, kw, pos)| {
                    keyword(kw).or_else(|| pos.and_then(|p| positional.get(p).copied()))
                }),
        };
        let Some(name_expr) = name_expr else {
            return false;
        };
        match name_expr.as_const() {
            Some(v) => {
                let Some(name) = v.as_str() else { return false };
                // selectattr('a.b') walks dotted paths.
                if name.split('.').any(is_internal_name) {
                    self.internal(whole, chain_span(whole), name);
                    return true;
                }
                false
            }
            None => {
                let fact = Fact::new(
                    "TPL102",
                    format!(
                        "the {} filter looks up an attribute whose name is computed at render time",
                        f.name
                    ),
                );
                self.push_at(fact, chain_span(whole));
                false
            }
        }
    }

    fn char_codes(&mut self, s: &str, span: Span) {
        let f = Fact::new(
            "TPL104",
            format!(
                "the template builds a string from character codes: {:?}",
                clip(s, 40)
            ),
        );
        self.push_at(f, span);
    }

    fn string_constant(&mut self, s: &str, span: Span, what: &str) {
        let start = (span.start_offset as usize).min(self.src.len());
        let end = (span.end_offset as usize).clamp(start, self.src.len());
        let raw = &self.src[floor_char(self.src, start)..floor_char(self.src, end)];
        let lower = raw.to_ascii_lowercase();
        let escaped = lower.contains("\\x5f") || lower.contains("\\u005f") || lower.contains("\\137");
        if let Some(name) = internal_in_string(s) {
            let f = Fact::new(
                "TPL104",
                format!("{what} names the Python internal {name}: {:?}", clip(s, 80)),
            );
            self.push_at(f, span);
        } else if escaped {
            let f = Fact::new(
                "TPL104",
                format!("{what} spells underscores as escapes: {:?}", clip(s, 80)),
            );
            self.push_at(f, span);
        }
    }
}

/// A format string that turns numbers into characters (`%c`, `{:c}`).
fn char_code_format(s: &str) -> bool {
    s.contains("%c") || s.contains(":c}")
}

/// The Python-internal names along an expression (attributes, constant subscripts, attr
/// filters), outermost first, bounded.
fn internals_in(expr: &Expr<'_>, out: &mut Vec<String>, depth: usize) {
    if depth > 64 || out.len() > 16 {
        return;
    }
    match expr {
        Expr::GetAttr(g) => {
            if is_internal_name(g.name) {
                out.push(g.name.to_owned());
            }
            internals_in(&g.expr, out, depth + 1);
        }
        Expr::GetItem(g) => {
            if let Some(v) = g.subscript_expr.as_const()
                && let Some(s) = v.as_str()
                && is_internal_name(s)
            {
                out.push(s.to_owned());
            }
            internals_in(&g.expr, out, depth + 1);
        }
        Expr::Call(c) => {
            internals_in(&c.expr, out, depth + 1);
            for a in &c.args {
                if let CallArg::Pos(e) | CallArg::Kwarg(_, e) = a {
                    internals_in(e, out, depth + 1);
                }
            }
        }
        Expr::Filter(f) => {
            for a in &f.args {
                if let CallArg::Pos(e) | CallArg::Kwarg(_, e) = a
                    && let Some(v) = e.as_const()
                    && let Some(s) = v.as_str()
                    && s.split('.').any(is_internal_name)
                {
                    out.push(s.to_owned());
                }
            }
            if let Some(e) = &f.expr {
                internals_in(e, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// The span of a whole postfix chain: minijinja starts each link's span at the link before it,
/// so the start is the smallest one down to the chain's root.
fn chain_span(expr: &Expr<'_>) -> Span {
    let mut span = expr.span();
    let mut e = expr;
    for _ in 0..256 {
        let s = e.span();
        if s.start_offset < span.start_offset {
            span.start_offset = s.start_offset;
            span.start_line = s.start_line;
            span.start_col = s.start_col;
        }
        e = match e {
            Expr::GetAttr(g) => &g.expr,
            Expr::GetItem(g) => &g.expr,
            Expr::Call(c) => &c.expr,
            Expr::Slice(s) => &s.expr,
            Expr::Filter(f) => match &f.expr {
                Some(inner) => inner,
                None => break,
            },
            _ => break,
        };
    }
    span
}

/// The variable an attribute/item/call/filter chain starts from.
fn root_var<'s>(expr: &Expr<'s>) -> Option<&'s str> {
    let mut e = expr;
    for _ in 0..256 {
        e = match e {
            Expr::Var(v) => return Some(v.id),
            Expr::GetAttr(g) => &g.expr,
            Expr::GetItem(g) => &g.expr,
            Expr::Call(c) => &c.expr,
            Expr::Filter(f) => f.expr.as_ref()?,
            _ => return None,
        };
    }
    None
}

fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(t: &str) -> Vec<&'static str> {
        analyse(t).iter().map(|f| f.rule).collect()
    }

    const REAL_LIKE: &str = r#"{%- set ns = namespace(found=false, idx=0) -%}
{%- if messages[0]['role'] == 'system' -%}{%- set ns.found = true -%}{%- endif -%}
{%- for message in messages -%}
  {%- if message['role'] not in ['user', 'assistant', 'system', 'tool'] -%}
    {{- raise_exception('Conversation roles must be user/assistant/system/tool') -}}
  {%- endif -%}
  {%- if message.tool_calls is defined and message.tool_calls -%}
    {%- for tc in message.tool_calls | selectattr('type', 'equalto', 'function') -%}
      {{- '<tool_call>' + tc.function | tojson + '</tool_call>' -}}
    {%- endfor -%}
  {%- endif -%}
  {{- '<|im_start|>' + message['role'] + '\n' + message['content'] | trim + '<|im_end|>\n' -}}
  {%- if loop.last and message.role == 'user' -%}{%- break -%}{%- endif -%}
{%- endfor -%}
{%- macro render(x) -%}{{ x | map(attribute='name') | join(', ') }}{%- endmacro -%}
{%- generation -%}{{ render(tools) }}{%- endgeneration -%}
{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' + strftime_now('%d %b %Y') }}{%- endif -%}"#;

    #[test]
    fn real_like_templates_give_nothing() {
        assert_eq!(analyse(REAL_LIKE), []);
        assert_eq!(rules("Hello {{ name }}"), Vec::<&str>::new());
        assert_eq!(rules(""), Vec::<&str>::new());
        // A local variable that happens to be called like a gadget.
        assert_eq!(
            rules("{% for config in configs %}{{ config.name }}{% endfor %}"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn tpl101_dunder_walks() {
        for t in [
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "{{ lipsum.__globals__['os'].popen('id').read() }}",
            "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
            "{% set ns = namespace() %}{{ ns.__init__.__globals__ }}",
            "{{ x['__class__'] }}",
            "{{ x['__cla' ~ 'ss__'] }}",
            "{{ x|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
            "{{ x|attr('__cl' + 'ass__') }}",
            "{{ self._TemplateReference__context }}",
            "{{ x|map(attribute='__class__')|list }}",
            "{{ x|map('attr', '__class__')|list }}",
            "{{ x.gi_frame.f_globals }}",
            "{% if false %}{% macro m() %}{{ ().__class__ }}{% endmacro %}{% endif %}",
        ] {
            assert!(rules(t).contains(&"TPL101"), "{t}: {:?}", analyse(t));
        }
        let f = analyse("{{ ''.__class__.__mro__[1].__subclasses__() }}");
        let f: Vec<_> = f.iter().filter(|f| f.rule == "TPL101").collect();
        assert_eq!(f.len(), 1, "one finding per chain: {f:?}");
        assert!(f[0].message.contains("__subclasses__") && f[0].message.contains("__class__"));
        assert_eq!(f[0].offset, Some(3));
        assert!(f[0].evidence.as_deref().unwrap().starts_with("''.__class__"));
        let f = analyse("{{ lipsum.__globals__ }}");
        assert!(f[0].message.contains("through lipsum"), "{f:?}");
        assert_eq!(
            rules("{{ x.class_ }}{{ x['role'] }}{{ x|attr('content') }}"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn tpl102_computed_attr() {
        assert_eq!(rules("{% set n = a ~ b %}{{ x|attr(n) }}"), ["TPL102"]);
        assert_eq!(rules("{{ x|map(attribute=name)|list }}"), ["TPL102"]);
        assert_eq!(rules("{{ x|attr('content') }}"), Vec::<&str>::new());
    }

    #[test]
    fn tpl103_gadget_globals() {
        for g in [
            "cycler",
            "joiner",
            "lipsum",
            "self",
            "config",
            "request",
            "url_for",
            "get_flashed_messages",
        ] {
            assert_eq!(rules(&format!("{{{{ {g} }}}}")), ["TPL103"], "{g}");
        }
        assert_eq!(
            rules("{% set ns = namespace(a=1) %}{{ ns.a }}"),
            Vec::<&str>::new()
        );
        assert_eq!(rules("{% set lipsum = 'x' %}{{ lipsum }}"), Vec::<&str>::new());
    }

    #[test]
    fn tpl104_dunder_strings() {
        assert_eq!(rules("{% set n = '__globals__' %}"), ["TPL104"]);
        assert_eq!(rules("{{ '{0.__class__}'.format(x) }}"), ["TPL104"]);
        assert_eq!(rules("{% set n = '__glo' ~ 'bals__' %}"), ["TPL104"]);
        assert_eq!(rules("{% set n = '\\x5fsecret' %}"), ["TPL104"]);
        assert_eq!(
            rules("{% set n = dict(__cl=1, ass__=1)|join %}"),
            ["TPL104", "TPL104"]
        );
        assert_eq!(rules("{% set n = '%c%c'|format(95, 95) %}"), ["TPL104"]);
        assert_eq!(rules("{% set n = '{:c}{:c}'.format(95, 95) %}"), ["TPL104"]);
        assert_eq!(
            rules("{{ '%s: %d'|format(a, b) }}{{ dict(role='user') }}"),
            Vec::<&str>::new()
        );
        assert_eq!(
            rules("{{ '__bold__ text' }}{{ 'snake_case' }}"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn tpl105_other_templates() {
        for t in [
            "{% include 'x.html' %}",
            "{% import 'macros.j2' as m %}",
            "{% from 'macros.j2' import f %}",
            "{% extends '/etc/passwd' %}",
        ] {
            assert_eq!(rules(t), ["TPL105"], "{t}");
        }
        assert_eq!(
            rules("{% macro f() %}x{% endmacro %}{{ f() }}"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn tpl106_unparseable_or_too_big() {
        assert_eq!(rules("{% if x %}unclosed"), ["TPL106"]);
        assert_eq!(rules("{% weird_tag %}"), ["TPL106"]);
        // Unparseable but still carrying a payload.
        let r = rules("{% weird %}{{ x.__class__ }}");
        assert!(r.contains(&"TPL106") && r.contains(&"TPL101"), "{r:?}");
        let big = "x".repeat(MAX_TEMPLATE_LEN + 1);
        assert_eq!(rules(&big), ["TPL106"]);
        let long_block = format!("{{{{ a{} }}}}", " ~ a".repeat(MAX_BLOCK_TOKENS));
        assert_eq!(rules(&long_block), ["TPL106"]);
        assert_eq!(rules("{% if x %}closed{% endif %}"), Vec::<&str>::new());
    }

    #[test]
    fn hostile_shapes_do_not_crash() {
        for t in [
            format!("{{{{ {}1{} }}}}", "(".repeat(10_000), ")".repeat(10_000)),
            format!("{{{{ a{} }}}}", ".b".repeat(2000)),
            format!("{}{}", "{% if x %}".repeat(3000), "{% endif %}".repeat(3000)),
            format!("{{{{ {}1{} }}}}", "[".repeat(10_000), "]".repeat(10_000)),
            "{{ '\\ud800' }}".to_owned(),
            "{%".to_owned(),
            "{{ 'a' * 1000000000 }}".to_owned(),
        ] {
            let _ = analyse(&t);
        }
    }

    #[test]
    fn offsets_are_byte_offsets_in_the_template() {
        let t = "héllo {{ x.__dict__ }}";
        let f = analyse(t);
        let at = f[0].offset.unwrap() as usize;
        assert!(t[at..].starts_with("x.__dict__"), "{f:?}");
    }
}
