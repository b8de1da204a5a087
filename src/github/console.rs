//! Where a build's log is read: the CodeBuild console page of the build, from its ARN. GitHub shows it as the
//! deployment's `log_url`, one click from the release page.

/// The console page of build `build_arn` (`arn:<partition>:codebuild:<region>:<account>:build/<project>:<id>`),
/// or `None` when the ARN is not a CodeBuild build's.
pub fn build_url(build_arn: &str) -> Option<String> {
    let mut parts = build_arn.splitn(6, ':');
    let (
        Some("arn"),
        Some(partition),
        Some("codebuild"),
        Some(region),
        Some(account),
        Some(resource),
    ) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    )
    else {
        return None;
    };
    let build_id = resource.strip_prefix("build/")?;
    let (project, _) = build_id.split_once(':')?;
    let console = match partition {
        "aws" => "console.aws.amazon.com",
        "aws-cn" => "console.amazonaws.cn",
        "aws-us-gov" => "console.amazonaws-us-gov.com",
        _ => return None,
    };
    if region.is_empty() || account.is_empty() || project.is_empty() {
        return None;
    }
    // The build id's ':' is escaped in the console's path.
    Some(format!(
        "https://{region}.{console}/codesuite/codebuild/{account}/projects/{project}/build/{}/?region={region}",
        build_id.replace(':', "%3A")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_arn_becomes_its_console_page() {
        assert_eq!(
            build_url("arn:aws:codebuild:eu-west-1:222222222222:build/promote:0f3a8e5c-6b1d")
                .as_deref(),
            Some(
                "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/222222222222/projects/promote/build/\
                 promote%3A0f3a8e5c-6b1d/?region=eu-west-1"
            )
        );
        assert!(
            build_url("arn:aws-cn:codebuild:cn-north-1:1:build/p:1")
                .is_some_and(|url| url.starts_with("https://cn-north-1.console.amazonaws.cn/"))
        );
    }

    #[test]
    fn anything_else_has_no_page() {
        for arn in [
            "",
            "promote:1",
            "arn:aws:codebuild:us-east-1:1:project/promote",
            "arn:aws:s3:us-east-1:1:build/p:1",
            "arn:aws:codebuild:us-east-1:1:build/promote",
            "arn:other:codebuild:us-east-1:1:build/p:1",
        ] {
            assert_eq!(build_url(arn), None, "{arn}");
        }
    }
}
