//! `GET /docs` (contract v2): a browsable API reference rendered from `/openapi.json` by
//! Swagger UI, whose files are vendored from the npm package `swagger-ui-dist`
//! (`scripts/vendor-swagger-ui.sh`, pinned, with their SHA-256 in `assets/swagger-ui/SOURCE`)
//! and embedded in the binary. The page loads nothing from another host, and its
//! Content-Security-Policy forbids it to: scripts, styles, fonts and connections to this
//! origin only (Swagger UI sets inline styles, hence `'unsafe-inline'` for styles and nothing
//! else), no framing.

use actix_web::HttpResponse;

use crate::routes::pages::{self, Asset};

/// The page's policy: this origin only, no inline script, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The embedded files, under `/docs/`.
const ASSETS: [Asset; 3] = [
    Asset {
        name: "swagger-ui-bundle.js",
        media: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
    },
    Asset {
        name: "swagger-ui.css",
        media: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
    },
    Asset {
        name: "init.js",
        media: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/docs/init.js"),
    },
];

const PAGE: &str = include_str!("../../assets/docs/index.html");

#[utoipa::path(get, path = "/docs", tag = "meta",
    responses((status = 200, content_type = "text/html",
        description = "a browsable API reference rendered from `/openapi.json` (Swagger UI, embedded); it loads nothing from another host")))]
pub async fn page() -> HttpResponse {
    pages::page(PAGE, CONTENT_SECURITY_POLICY, "no-cache")
}

/// `GET /docs/{file}`: the page's scripts and styles; 404 for any other name.
pub async fn asset(file: actix_web::web::Path<String>) -> HttpResponse {
    pages::asset(&ASSETS, &file, CONTENT_SECURITY_POLICY, "public, max-age=3600")
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::digest::{SHA256, digest};

    /// The embedded files are the ones `scripts/vendor-swagger-ui.sh` recorded.
    #[test]
    fn the_vendored_files_match_their_recorded_sha256() {
        let source = include_str!("../../assets/swagger-ui/SOURCE");
        let recorded: Vec<(&str, &str)> = source
            .lines()
            .filter_map(|line| line.trim().split_once("  "))
            .map(|(hash, name)| (name, hash))
            .collect();
        let files: [(&str, &[u8]); 3] = [
            (
                "swagger-ui-bundle.js",
                include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
            ),
            ("swagger-ui.css", include_bytes!("../../assets/swagger-ui/swagger-ui.css")),
            ("LICENSE", include_bytes!("../../assets/swagger-ui/LICENSE")),
        ];
        for (name, bytes) in files {
            let hash: String =
                digest(&SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect();
            assert!(recorded.contains(&(name, hash.as_str())), "{name}: {hash} not in SOURCE");
        }
        assert!(source.contains("version: 5."), "{source}");
    }

    /// The page's own files carry no inline script and name no other host.
    #[test]
    fn the_page_has_no_inline_script_and_no_other_host() {
        let page = super::PAGE;
        for tag in page.match_indices("<script") {
            let rest = &page[tag.0..];
            let end = rest.find('>').expect("a tag end");
            assert!(rest[..end].contains("src="), "an inline script: {}", &rest[..end]);
            assert!(rest[end + 1..].starts_with("</script>"), "a script with a body");
        }
        let init = include_str!("../../assets/docs/init.js");
        for text in [page, init] {
            assert!(!text.contains("http://") && !text.contains("https://"), "{text}");
        }
        assert!(init.contains("validatorUrl: null"));
    }
}
