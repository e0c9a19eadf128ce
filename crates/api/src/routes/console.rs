//! `GET /console`: the operator console, a page of plain HTML with a little JavaScript
//! (`assets/console/`), embedded in the binary. It signs in through the server's own endpoints
//! in cookie mode and calls the admin API; see docs/console.md. Its policy is stricter than
//! `/docs`'s: this origin only for everything, no inline script or style, no framing, and
//! nothing cached.

use actix_web::HttpResponse;

use crate::routes::pages::{self, Asset};

/// The console's policy: everything from this origin only, nothing inline.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Admin pages are not kept by browsers or proxies.
const NO_STORE: &str = "no-store";

const ASSETS: [Asset; 2] = [
    Asset {
        name: "console.js",
        media: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/console/console.js"),
    },
    Asset {
        name: "console.css",
        media: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/console/console.css"),
    },
];

const PAGE: &str = include_str!("../../assets/console/index.html");

pub async fn page() -> HttpResponse {
    pages::page(PAGE, CONTENT_SECURITY_POLICY, NO_STORE)
}

/// `GET /console/{file}`: the console's script and style; 404 for any other name.
pub async fn asset(file: actix_web::web::Path<String>) -> HttpResponse {
    pages::asset(&ASSETS, &file, CONTENT_SECURITY_POLICY, NO_STORE)
}

#[cfg(test)]
mod tests {
    /// The page has no inline script or style and names no other host; its script builds
    /// the page with text, never HTML, and keeps the access token out of web storage.
    #[test]
    fn the_console_has_no_inline_code_no_other_host_and_no_token_storage() {
        let page = super::PAGE;
        for tag in page.match_indices("<script") {
            let rest = &page[tag.0..];
            let end = rest.find('>').expect("a tag end");
            assert!(rest[..end].contains("src="), "an inline script: {}", &rest[..end]);
        }
        assert!(!page.contains("<style") && !page.contains("style="), "inline style");
        assert!(!page.contains("onclick=") && !page.contains("onsubmit="), "inline handler");
        let script = include_str!("../../assets/console/console.js");
        for text in [page, script, include_str!("../../assets/console/console.css")] {
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "localStorage",
            "sessionStorage",
            "eval(",
        ] {
            assert!(!script.contains(forbidden), "console.js uses {forbidden}");
        }
        assert!(script.contains("X-Requested-With"), "the CSRF header on refresh");
    }
}
