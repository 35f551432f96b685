//! The partition table of botocore's `partitions.json`, as Lambda's endpoint rules use it

/// One partition of botocore's `partitions.json` (the outputs Lambda's rules use)
#[derive(Debug)]
pub(super) struct Partition {
    pub(super) id: &'static str,
    pub(super) dns_suffix: &'static str,
    pub(super) dual_stack_dns_suffix: &'static str,
    pub(super) supports_fips: bool,
    pub(super) supports_dual_stack: bool,
    /// The explicit `regions` keys
    pub(super) regions: &'static [&'static str],
    /// `regionRegex` is `^(p1|p2|...)\w+\-\d+$` with these literal alternatives (each ending in
    /// `-`); see [`matches_region_regex`]
    pub(super) regex_prefixes: &'static [&'static str],
}

/// botocore `partitions.json`, in file order
pub(super) const PARTITIONS: [Partition; 8] = [
    Partition {
        id: "aws",
        dns_suffix: "amazonaws.com",
        dual_stack_dns_suffix: "api.aws",
        supports_fips: true,
        supports_dual_stack: true,
        regions: &[
            "af-south-1",
            "ap-east-1",
            "ap-east-2",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-south-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ap-southeast-5",
            "ap-southeast-6",
            "ap-southeast-7",
            "aws-global",
            "ca-central-1",
            "ca-west-1",
            "eu-central-1",
            "eu-central-2",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "il-central-1",
            "me-central-1",
            "me-south-1",
            "mx-central-1",
            "sa-east-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        ],
        // ^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$
        regex_prefixes: &[
            "us-", "eu-", "ap-", "sa-", "ca-", "me-", "af-", "il-", "mx-",
        ],
    },
    Partition {
        id: "aws-cn",
        dns_suffix: "amazonaws.com.cn",
        dual_stack_dns_suffix: "api.amazonwebservices.com.cn",
        supports_fips: true,
        supports_dual_stack: true,
        regions: &["aws-cn-global", "cn-north-1", "cn-northwest-1"],
        // ^cn\-\w+\-\d+$
        regex_prefixes: &["cn-"],
    },
    Partition {
        id: "aws-eusc",
        dns_suffix: "amazonaws.eu",
        dual_stack_dns_suffix: "api.amazonwebservices.eu",
        supports_fips: true,
        supports_dual_stack: true,
        regions: &["eusc-de-east-1"],
        // ^eusc\-(de)\-\w+\-\d+$
        regex_prefixes: &["eusc-de-"],
    },
    Partition {
        id: "aws-iso",
        dns_suffix: "c2s.ic.gov",
        dual_stack_dns_suffix: "api.aws.ic.gov",
        supports_fips: true,
        supports_dual_stack: true,
        regions: &["aws-iso-global", "us-iso-east-1", "us-iso-west-1"],
        // ^us\-iso\-\w+\-\d+$
        regex_prefixes: &["us-iso-"],
    },
    Partition {
        id: "aws-iso-b",
        dns_suffix: "sc2s.sgov.gov",
        dual_stack_dns_suffix: "api.aws.scloud",
        supports_fips: true,
        supports_dual_stack: true,
        regions: &["aws-iso-b-global", "us-isob-east-1", "us-isob-west-1"],
        // ^us\-isob\-\w+\-\d+$
        regex_prefixes: &["us-isob-"],
    },
    Partition {
        id: "aws-iso-e",
        dns_suffix: "cloud.adc-e.uk",
        dual_stack_dns_suffix: "api.cloud-aws.adc-e.uk",
        supports_fips: true,
        supports_dual_stack: true,
        regions: &["aws-iso-e-global", "eu-isoe-west-1"],
        // ^eu\-isoe\-\w+\-\d+$
        regex_prefixes: &["eu-isoe-"],
    },
    Partition {
        id: "aws-iso-f",
        dns_suffix: "csp.hci.ic.gov",
        dual_stack_dns_suffix: "api.aws.hci.ic.gov",
        supports_fips: true,
        supports_dual_stack: true,
        regions: &["aws-iso-f-global", "us-isof-east-1", "us-isof-south-1"],
        // ^us\-isof\-\w+\-\d+$
        regex_prefixes: &["us-isof-"],
    },
    Partition {
        id: "aws-us-gov",
        dns_suffix: "amazonaws.com",
        dual_stack_dns_suffix: "api.aws",
        supports_fips: true,
        supports_dual_stack: true,
        regions: &["aws-us-gov-global", "us-gov-east-1", "us-gov-west-1"],
        // ^us\-gov\-\w+\-\d+$
        regex_prefixes: &["us-gov-"],
    },
];

/// The `aws.partition` function as botocore implements it
///
/// First every partition's explicit region list, then every partition's `regionRegex`, both in
/// file order; a region matching nothing gets `aws` (botocore; the Smithy spec would return no
/// partition).
pub(super) fn partition(region: &str) -> &'static Partition {
    PARTITIONS
        .iter()
        .find(|p| p.regions.contains(&region))
        .or_else(|| PARTITIONS.iter().find(|p| matches_region_regex(p, region)))
        .unwrap_or(&PARTITIONS[0])
}

/// `^(prefix alternatives)\w+\-\d+$`, by hand
///
/// `\w` cannot match `-`, so after the prefix the rest is exactly one run of word characters,
/// one `-` and one run of digits. `\w` and `\d` are taken as ASCII: regions reaching here passed
/// [`is_region_label`](super::is_region_label), so Python's Unicode classes would match the
/// same strings.
pub(super) fn matches_region_regex(p: &Partition, region: &str) -> bool {
    p.regex_prefixes.iter().any(|prefix| {
        region.strip_prefix(prefix).is_some_and(|rest| {
            rest.split_once('-').is_some_and(|(word, digits)| {
                !word.is_empty()
                    && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit())
            })
        })
    })
}
