//! Tests of [`check`], which lists the problems that `ivr-verify
//! check-config` prints, and of the pepper errors of `customers import`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{check, import_customers, Overrides};
use crate::config::Config;
use crate::store::MemoryStore;

const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// A copy of `config/default.toml` in `<temp>/config/ivr.toml` that uses the
/// shipped prompts and customers file, so its secrets and store resolve to
/// `<temp>/var`.
struct Setup {
    /// Temporary folder, deleted when the setup is dropped.
    _dir: tempfile::TempDir,
    /// Config file that `check` reads.
    config: PathBuf,
    /// `<temp>/config/../var`, the folder of the secrets, as the config
    /// resolves it.
    var: PathBuf,
}

fn shipped(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

/// Writes the default config, changed by `edit`, into a new temporary
/// folder.
fn setup(edit: impl FnOnce(String) -> String) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let config_dir = dir.path().join("config");
    fs::create_dir_all(&config_dir).unwrap();
    fs::create_dir_all(dir.path().join("var")).unwrap();

    let text = DEFAULT_TOML
        .replace(
            "dir = \"../prompts\"",
            &format!("dir = \"{}\"", shipped("prompts")),
        )
        .replace(
            "file = \"customers.example.csv\"",
            &format!("file = \"{}\"", shipped("config/customers.example.csv")),
        );
    let config = config_dir.join("ivr.toml");
    fs::write(&config, edit(text)).unwrap();

    Setup {
        var: config_dir.join("../var"),
        config,
        _dir: dir,
    }
}

/// Returns the 1-based line of the first line of `text` that, without
/// leading spaces, starts with `start`.
fn line_starting(text: &str, start: &str) -> usize {
    text.lines()
        .position(|line| line.trim_start().starts_with(start))
        .unwrap()
        + 1
}

fn problems(setup: &Setup) -> Vec<String> {
    check(&setup.config, &Overrides::default())
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn write_pepper(setup: &Setup, mode: u32) -> PathBuf {
    let path = setup.var.join("pepper");
    fs::write(&path, "ab".repeat(32)).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn check_accepts_default_setup() {
    let setup = setup(|text| text);
    assert_eq!(problems(&setup), Vec::<String>::new());
    assert!(
        !setup.var.join("pepper").exists(),
        "check must not create the pepper"
    );
}

#[test]
fn check_missing_menu_prompt_names_entry() {
    let setup = setup(|text| {
        text.replace(
            "menu = [\"information\", \"contract_change\", \"financial_change\"]",
            "menu = [\n    \"information\",\n    \"address_change\",\n    \"financial_change\",\n]",
        )
        .replace(
            "[request_types.information]",
            "[request_types.address_change]\n# Level a call of this type must reach.\nlevel = \"basic\"\n\n[request_types.information]",
        )
    });
    let text = fs::read_to_string(&setup.config).unwrap();
    let line = line_starting(&text, "\"address_change\",");
    let prompts = shipped("prompts");

    assert_eq!(
        problems(&setup),
        vec![format!(
            "{}:{line}: service_lines.menu: prompt files {prompts}/nl/request_type_address_change.wav, {prompts}/en/request_type_address_change.wav are missing for request type `address_change` of service line `default`; add [request_type_address_change] to prompts/catalog.toml if it is not there, then run prompts/generate",
            setup.config.display()
        )]
    );
}

#[test]
fn check_readable_pepper_names_key() {
    let setup = setup(|text| text);
    let pepper = write_pepper(&setup, 0o644);
    let text = fs::read_to_string(&setup.config).unwrap();
    let line = line_starting(&text, "pepper_file =");

    assert_eq!(
        problems(&setup),
        vec![format!(
            "{}:{line}: secrets.pepper_file: pepper file {} has mode 644, which lets other users read it; run `chmod 600` on it",
            setup.config.display(),
            pepper.display()
        )]
    );
}

#[test]
fn check_private_pepper_accepted() {
    let setup = setup(|text| text);
    write_pepper(&setup, 0o600);
    assert_eq!(problems(&setup), Vec::<String>::new());
}

#[test]
fn check_readable_signing_key_names_key() {
    let setup = setup(|text| text);
    let key = setup.var.join("token-signing-key.p8");
    fs::write(&key, "not a key").unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let text = fs::read_to_string(&setup.config).unwrap();
    let line = line_starting(&text, "signing_key_file =");

    let problems = problems(&setup);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let expected = format!(
        "{}:{line}: secrets.signing_key_file: signing key {} has mode 644",
        setup.config.display(),
        key.display()
    );
    assert!(problems[0].starts_with(&expected), "{problems:?}");
}

#[test]
fn check_missing_prompt_names_dir() {
    let prompts = tempfile::tempdir().unwrap();
    let prompts_dir = prompts.path().display().to_string();
    fs::copy(
        shipped("prompts/catalog.toml"),
        prompts.path().join("catalog.toml"),
    )
    .unwrap();
    let setup = setup(|text| text.replace(&shipped("prompts"), &prompts_dir));
    let text = fs::read_to_string(&setup.config).unwrap();
    let line = line_starting(&text, "dir =");

    // The empty folder also lacks the menu prompts, which are reported on
    // the menu entries.
    let problems: Vec<String> = problems(&setup)
        .into_iter()
        .filter(|problem| problem.contains(": prompts.dir: "))
        .collect();
    assert!(!problems.is_empty());
    let expected = format!(
        "{}:{line}: prompts.dir: prompt file ",
        setup.config.display()
    );
    for problem in &problems {
        assert!(problem.starts_with(&expected), "{problem}");
    }
}

#[tokio::test]
async fn import_readable_pepper_names_key() {
    let setup = setup(|text| text);
    let pepper = write_pepper(&setup, 0o644);
    let config = Config::load(&setup.config).unwrap();
    let text = fs::read_to_string(&setup.config).unwrap();
    let line = line_starting(&text, "pepper_file =");

    let error = import_customers(&config, &config.customers.file, &MemoryStore::new())
        .await
        .unwrap_err();
    assert_eq!(
        error,
        format!(
            "{}:{line}: secrets.pepper_file: pepper file {} has mode 644, which lets other users read it; run `chmod 600` on it",
            setup.config.display(),
            pepper.display()
        )
    );
}
