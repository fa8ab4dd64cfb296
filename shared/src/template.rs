//! Handlebars content written by API callers is untrusted: what a template may contain, and
//! the bounds every render stays within. Intake refuses partials, inline partials, decorators
//! and helpers off a short allow list (so nothing recurses and nothing writes to our logs),
//! and blocks nested past [`MAX_DEPTH`]. A render is refused before it starts when its loops
//! could do more than [`MAX_WORK`] steps over the recipient's data, and stops once its output
//! passes the configured byte cap. The worker checks again when it compiles, so content
//! stored before these rules cannot crash it either.

use std::io::Write;

use handlebars::{
    Handlebars, no_escape,
    template::{HelperTemplate, Parameter, Template, TemplateElement},
};
use serde_json::Value;

/// Deepest nesting of blocks and subexpressions a template may have.
pub const MAX_DEPTH: usize = 16;

/// Most template elements one render may evaluate (loops multiply their bodies).
pub const MAX_WORK: u64 = 1_000_000;

/// The helpers a template may call: conditions, loops, lookups and comparisons. No `log`
/// (it writes data, addresses included, to the process log) and no `raw`.
pub const ALLOWED_HELPERS: &[&str] =
    &["if", "unless", "each", "with", "lookup", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or", "not", "len"];

/// Helpers handlebars registers that templates may not call, even without arguments.
const REFUSED_BUILTINS: &[&str] = &["log", "raw"];

/// Parses `source` and checks it against the rules above; the error says what is refused.
pub fn check(source: &str) -> Result<Template, String> {
    if nesting(source) > MAX_DEPTH {
        return Err(format!("blocks or subexpressions are nested deeper than {MAX_DEPTH}"));
    }
    let template = Template::compile(source).map_err(|e| format!("template error: {e}"))?;
    check_elements(&template.elements, 0)?;
    Ok(template)
}

/// A strict registry without the refused helpers; `escape_html` is false for the subject and
/// the text part.
pub fn registry(escape_html: bool) -> Handlebars<'static> {
    let mut h = Handlebars::new();
    h.set_strict_mode(true);
    if !escape_html {
        h.register_escape_fn(no_escape);
    }
    for name in REFUSED_BUILTINS {
        h.unregister_helper(name);
    }
    h
}

/// One recipient's data, with the size of its widest collection (what bounds every loop)
/// measured once for all the parts rendered from it.
pub struct Data {
    value: Value,
    widest: u64,
}

impl Data {
    pub fn new(value: Value) -> Data {
        let widest = widest(&value);
        Data { value, widest }
    }
}

/// Renders template `name` of `registry` (registered from [`check`]ed source) with `data`,
/// refusing first when its loops could exceed [`MAX_WORK`] and stopping past `max_bytes`.
pub fn render(registry: &Handlebars<'static>, name: &str, data: &Data, max_bytes: usize) -> Result<String, String> {
    let template = registry.get_template(name).ok_or_else(|| format!("no template {name:?}"))?;
    let steps = work(&template.elements, data.widest);
    if steps > MAX_WORK {
        return Err(format!("loops over this recipient's data could take {steps} steps; the limit is {MAX_WORK}"));
    }
    let mut out = Capped { buf: Vec::new(), max: max_bytes, exceeded: false };
    match registry.render_to_write(name, &data.value, &mut out) {
        Ok(()) => String::from_utf8(out.buf).map_err(|_| "rendered output is not UTF-8".to_string()),
        Err(_) if out.exceeded => Err(format!("rendered output exceeds {max_bytes} bytes")),
        Err(e) => Err(e.to_string()),
    }
}

/// A buffer that refuses to grow past `max`, so a template that multiplies its output stops
/// early instead of filling memory.
struct Capped {
    buf: Vec<u8>,
    max: usize,
    exceeded: bool,
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.max {
            self.exceeded = true;
            return Err(std::io::Error::other("output cap"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Deepest nesting of `{{#...}}` blocks and of parentheses inside mustaches, counted on the
/// text so that a deeply nested template never reaches the (recursive) parser.
fn nesting(source: &str) -> usize {
    let bytes = source.as_bytes();
    let (mut blocks, mut parens, mut deepest) = (0usize, 0usize, 0usize);
    let mut inside = false;
    let mut i = 0;
    while i < bytes.len() {
        if !inside && bytes[i..].starts_with(b"{{") {
            inside = true;
            i += 2;
            while i < bytes.len() && matches!(bytes[i], b'{' | b'~' | b' ') {
                i += 1;
            }
            match bytes.get(i) {
                Some(b'#') => blocks += 1,
                Some(b'/') => blocks = blocks.saturating_sub(1),
                _ => {}
            }
            continue;
        }
        if inside {
            match bytes[i] {
                b'(' => parens += 1,
                b')' => parens = parens.saturating_sub(1),
                b'}' if bytes[i..].starts_with(b"}}") => {
                    inside = false;
                    parens = 0;
                }
                _ => {}
            }
        }
        deepest = deepest.max(blocks + parens);
        i += 1;
    }
    deepest
}

fn check_elements(elements: &[TemplateElement], depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("blocks or subexpressions are nested deeper than {MAX_DEPTH}"));
    }
    for e in elements {
        match e {
            TemplateElement::RawString(_) | TemplateElement::Comment(_) => {}
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => check_helper(h, depth, false)?,
            TemplateElement::HelperBlock(h) => check_helper(h, depth, true)?,
            TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => {
                return Err("partials ({{> name}}) are not allowed".into());
            }
            TemplateElement::DecoratorExpression(_) | TemplateElement::DecoratorBlock(_) => {
                return Err("inline partials and decorators ({{#*inline}}, {{*name}}) are not allowed".into());
            }
            // A kind of element a later handlebars adds is refused until it is reviewed.
            _ => return Err("this template construct is not allowed".into()),
        }
    }
    Ok(())
}

/// A block, or an expression with arguments, calls a helper: it must be allowed. A bare
/// `{{name}}` reads a value, unless `name` is a refused built-in.
fn check_helper(h: &HelperTemplate, depth: usize, block: bool) -> Result<(), String> {
    let name = match &h.name {
        Parameter::Name(n) => Some(n.as_str()),
        Parameter::Path(handlebars::Path::Relative((_, raw))) => Some(raw.as_str()),
        _ => None,
    };
    if let Some(name) = name {
        let calls = block || !h.params.is_empty() || !h.hash.is_empty();
        if REFUSED_BUILTINS.contains(&name) || (calls && !ALLOWED_HELPERS.contains(&name)) {
            return Err(format!("helper `{name}` is not allowed (allowed: {})", ALLOWED_HELPERS.join(", ")));
        }
    }
    for p in h.params.iter().chain(h.hash.values()).chain(std::iter::once(&h.name)) {
        if let Parameter::Subexpression(s) = p {
            check_elements(std::slice::from_ref(&s.element), depth + 1)?;
        }
    }
    for inner in [&h.template, &h.inverse].into_iter().flatten() {
        check_elements(&inner.elements, depth + 1)?;
    }
    Ok(())
}

/// An upper bound of the elements a render evaluates when no collection in the data has more
/// than `widest` items: an `each` body counts once per item.
fn work(elements: &[TemplateElement], widest: u64) -> u64 {
    elements.iter().fold(0u64, |total, e| {
        let own = match e {
            TemplateElement::HelperBlock(h) => {
                let body = h.template.as_ref().map_or(0, |t| work(&t.elements, widest));
                let inverse = h.inverse.as_ref().map_or(0, |t| work(&t.elements, widest));
                let each = matches!(&h.name, Parameter::Name(n) if n == "each");
                let body = if each { body.saturating_mul(widest.max(1)) } else { body };
                1u64.saturating_add(body).saturating_add(inverse)
            }
            _ => 1,
        };
        total.saturating_add(own)
    })
}

/// The most items of any array or object in `value` (what one `each` can iterate).
fn widest(value: &Value) -> u64 {
    match value {
        Value::Array(a) => a.iter().map(widest).fold(a.len() as u64, u64::max),
        Value::Object(o) => o.values().map(widest).fold(o.len() as u64, u64::max),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
