//! `docs/reference.md`, the command and settings reference, rendered from the flag definitions above so
//! that a setting is described in one place. The hand-written docs link to its headings.
//!
//! A small renderer over `clap::Command` rather than a crate: clap-markdown (0.1) leaves out environment
//! variables, which are how buildspecs and templates set every setting, and clap_mangen writes roff man
//! pages, which GitHub does not render.

use std::fmt::Write;

use clap::{Arg, Command, CommandFactory};

use super::Cli;

/// Where the page lives, from the crate root.
const PAGE: &str = "docs/reference.md";
const REGENERATE: &str = "UPDATE_REFERENCE=1 cargo test --lib cli::reference";

/// One setting: its variable, its flag, and the commands that take it.
struct Setting<'a> {
    arg: &'a Arg,
    commands: Vec<String>,
}

fn page() -> String {
    let mut root = Cli::command();
    // Building gives each subcommand its full name and the global flags.
    root.build();
    let mut out = String::new();
    let name = root.get_name();
    let _ = writeln!(out, "# Command and settings reference\n");
    let _ = writeln!(
        out,
        "<!-- Generated from src/cli.rs by `{REGENERATE}`: edit the flag definitions, not this page. -->\n"
    );
    let about = root
        .get_about()
        .map(ToString::to_string)
        .unwrap_or_default();
    let _ = writeln!(out, "`{name}`: {}.\n", about.trim_end_matches('.'));
    let _ = writeln!(
        out,
        "Every setting is an environment variable (buildspecs and templates set those) and a flag (for people \
         at a terminal); a flag given on the command line wins over its variable. Boolean variables take \
         `true` or `false`. `{name} <command> --help` prints the same text.\n"
    );

    let _ = writeln!(out, "## Commands\n");
    // clap's own `help` subcommand says nothing `--help` does not.
    let commands: Vec<&Command> = root
        .get_subcommands()
        .filter(|command| command.get_name() != "help")
        .collect();
    for command in &commands {
        let about = command
            .get_about()
            .map(ToString::to_string)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- [`{name} {}`](#{name}-{}): {}",
            command.get_name(),
            command.get_name(),
            escape(&sentence(&about))
        );
    }
    let _ = writeln!(
        out,
        "\nEvery command also takes the global settings {}.\n",
        globals(&root)
    );

    let settings = settings(&root);
    let _ = writeln!(out, "## Settings\n");
    for setting in &settings {
        let variable = env(setting.arg).expect("settings have a variable");
        let _ = writeln!(out, "### `{variable}`\n");
        let mut facts = vec![format!("`{}`", flag(setting.arg))];
        facts.extend(default(setting.arg));
        facts.push(format!("commands: {}", setting.commands.join(", ")));
        let _ = writeln!(out, "{}\n", facts.join(" · "));
        let _ = writeln!(out, "{}\n", escape(&sentence(&help(setting.arg))));
        let values = possible_values(setting.arg);
        if !values.is_empty() {
            let _ = writeln!(out, "{}\n", values.join("\n"));
        }
    }

    let _ = writeln!(out, "## Exit codes\n");
    let after = root
        .get_after_help()
        .map(ToString::to_string)
        .unwrap_or_default();
    let _ = writeln!(out, "```text\n{}\n```\n", after.trim_end());

    for command in commands {
        let full = format!("{name} {}", command.get_name());
        let _ = writeln!(out, "## `{full}`\n");
        let about = command
            .get_long_about()
            .or_else(|| command.get_about())
            .map(ToString::to_string)
            .unwrap_or_default();
        let _ = writeln!(out, "{}\n", escape(&sentence(&about)));
        let usage = command.clone().render_usage().to_string();
        let _ = writeln!(out, "```text\n{}\n```\n", usage.trim_end());
        let plain: Vec<String> = command
            .get_positionals()
            .map(|arg| format!("- `{}`: {}", arg.get_id(), escape(&sentence(&help(arg)))))
            .chain(
                own_flags(command)
                    .filter(|arg| env(arg).is_none())
                    .map(|arg| format!("- `{}`: {}", flag(arg), escape(&sentence(&help(arg))))),
            )
            .collect();
        if !plain.is_empty() {
            let _ = writeln!(out, "{}\n", plain.join("\n"));
        }
        let with_variables: Vec<String> = own_flags(command)
            .filter_map(env)
            .map(|variable| link(&variable))
            .collect();
        if !with_variables.is_empty() {
            let _ = writeln!(out, "Settings: {}.\n", with_variables.join(", "));
        }
    }
    out.trim_end().to_owned() + "\n"
}

/// Every argument with a variable, once, in the order the commands define them. One variable is one flag
/// with one meaning wherever it appears.
fn settings(root: &Command) -> Vec<Setting<'_>> {
    let mut settings: Vec<Setting<'_>> = root
        .get_arguments()
        .filter(|arg| env(arg).is_some())
        .map(|arg| Setting {
            arg,
            commands: vec!["all".to_owned()],
        })
        .collect();
    for command in root.get_subcommands() {
        for arg in own_flags(command).filter(|arg| env(arg).is_some()) {
            let name = format!("`{}`", command.get_name());
            match settings.iter_mut().find(|s| env(s.arg) == env(arg)) {
                Some(known) => {
                    assert!(
                        flag(known.arg) == flag(arg) && help(known.arg) == help(arg),
                        "{} is defined twice, differently: once per setting, please",
                        env(arg).unwrap_or_default()
                    );
                    known.commands.push(name);
                }
                None => settings.push(Setting {
                    arg,
                    commands: vec![name],
                }),
            }
        }
    }
    settings
}

/// A command's own flags: not positional, not global, not clap's help and version.
fn own_flags(command: &Command) -> impl Iterator<Item = &Arg> {
    command.get_arguments().filter(|arg| {
        !arg.is_positional()
            && !arg.is_global_set()
            && !arg.is_hide_set()
            && !matches!(arg.get_id().as_str(), "help" | "version")
    })
}

fn globals(root: &Command) -> String {
    let links: Vec<String> = root
        .get_arguments()
        .filter_map(env)
        .map(|v| link(&v))
        .collect();
    links.join(" and ")
}

/// A link to a setting's heading (GitHub's anchor of a heading that is one variable name).
fn link(variable: &str) -> String {
    format!("[`{variable}`](#{})", variable.to_lowercase())
}

/// clap drops a one-line help's closing full stop; a page of prose wants it back.
fn sentence(text: &str) -> String {
    let text = text.trim_end();
    if text.is_empty() || text.ends_with('.') {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

fn env(arg: &Arg) -> Option<String> {
    arg.get_env().map(|v| v.to_string_lossy().into_owned())
}

/// `--flag`, with any other names it answers to.
fn flag(arg: &Arg) -> String {
    let long = arg.get_long().unwrap_or_default();
    let mut names = vec![format!("--{long}")];
    if let Some(aliases) = arg.get_all_aliases() {
        names.extend(aliases.iter().map(|alias| format!("--{alias}")));
    }
    names.join("`, `")
}

fn default(arg: &Arg) -> Option<String> {
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    (!defaults.is_empty()).then(|| format!("default `{}`", defaults.join(",")))
}

/// The values a setting accepts, one bullet each, where the definition lists them; a boolean's `true` and
/// `false` go without saying.
fn possible_values(arg: &Arg) -> Vec<String> {
    let values: Vec<_> = arg
        .get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .collect();
    if values.iter().map(|v| v.get_name()).eq(["true", "false"]) {
        return Vec::new();
    }
    values
        .iter()
        .map(|v| match v.get_help() {
            Some(help) => format!(
                "- `{}`: {}",
                v.get_name(),
                escape(&sentence(&help.to_string()))
            ),
            None => format!("- `{}`", v.get_name()),
        })
        .collect()
}

fn help(arg: &Arg) -> String {
    arg.get_long_help()
        .or_else(|| arg.get_help())
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Help text as Markdown: a `<placeholder>` outside a code span would be read as an HTML tag.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '<' if !in_code => out.push_str("&lt;"),
            '>' if !in_code => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn reference_is_what_the_flags_say() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PAGE);
    let generated = page();
    if std::env::var_os("UPDATE_REFERENCE").is_some() {
        std::fs::write(&path, &generated).expect("writing docs/reference.md");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        return;
    }
    let (was, is): (Vec<&str>, Vec<&str>) =
        (committed.lines().collect(), generated.lines().collect());
    let line = (0..was.len().max(is.len()))
        .find(|&i| was.get(i) != is.get(i))
        .unwrap_or(was.len());
    panic!(
        "{PAGE} is not what the flag definitions in src/cli.rs generate (from line {}: committed {:?}, \
         generated {:?}); regenerate it with `{REGENERATE}` and commit it",
        line + 1,
        was.get(line).unwrap_or(&"(end of file)"),
        is.get(line).unwrap_or(&"(end of file)"),
    );
}
