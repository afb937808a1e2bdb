//! Walking every object name in metadata, a page at a time.

use meta::namespace::{Namespace, ObjectCopies};

use crate::UpkeepError;
use crate::worker::Control;

/// Rows of the directory table read per metadata call.
const PAGE: usize = 1024;

/// A walk over every object name, resumable between pages.
#[derive(Debug, Default)]
pub(crate) struct ObjectScan {
    after: Option<Vec<u8>>,
    done: bool,
}

impl ObjectScan {
    /// The next page of names (possibly empty), `None` at the end. Yields
    /// to pause and shutdown between pages.
    pub(crate) async fn next_page(
        &mut self,
        ns: &Namespace,
        ctl: &Control,
    ) -> Result<Option<Vec<ObjectCopies>>, UpkeepError> {
        if self.done {
            return Ok(None);
        }
        ctl.checkpoint().await?;
        let page = ns.scan_objects(self.after.as_deref(), PAGE).await?;
        match page.next {
            Some(n) => self.after = Some(n),
            None => self.done = true,
        }
        Ok(Some(page.objects))
    }
}

/// Every name with a copy recorded on `node`, grouped by object id.
pub(crate) async fn names_on_node(
    ns: &Namespace,
    node: &str,
    ctl: &Control,
) -> Result<std::collections::HashMap<uuid::Uuid, Vec<ObjectCopies>>, UpkeepError> {
    let mut out: std::collections::HashMap<uuid::Uuid, Vec<ObjectCopies>> = Default::default();
    let mut scan = ObjectScan::default();
    while let Some(page) = scan.next_page(ns, ctl).await? {
        for o in page {
            if o.copies.iter().any(|c| c == node) {
                out.entry(o.object_id).or_default().push(o);
            }
        }
    }
    Ok(out)
}

/// `copies` without `node`.
pub(crate) fn without(copies: &[String], node: &str) -> Vec<String> {
    copies.iter().filter(|c| *c != node).cloned().collect()
}
