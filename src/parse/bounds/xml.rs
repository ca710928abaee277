//! The XML pass of the caps (see the parent module): one quick-xml pass, configured as
//! feed-rs configures its reader where it matters (closing-tag names trimmed; `<x/>` is an
//! element like `<x></x>`), that records the byte ranges of elements to cut and refuses what
//! would hurt the process rather than just fail to parse.
//!
//! Three refusals, all [`ParseError::Malformed`]. Nesting deeper than [`MAX_DEPTH`]: feed-rs
//! recurses once per level in places (nested `<media:group>`, `<itunes:category>`), a few
//! thousand levels overflow a 2 MiB thread stack, and a stack overflow aborts the whole
//! daemon — `catch_unwind` cannot stop it. Depth is checked inside cut elements too: a
//! document that nests too deep is refused whatever is cut. An element with more than
//! [`MAX_ATTRIBUTES`] attributes. And more than [`MAX_NAMESPACES`] namespace declarations in
//! scope, which would make resolving every name slow. Entities need no guard: quick-xml never reads a DTD and
//! feed-rs resolves only the five predefined entities and character references, leaving
//! `&name;` as it is, so neither billion laughs nor external entities expand.
//!
//! Names are compared as feed-rs compares them: the part after the last `:`, in the
//! namespace its prefix is bound to (feed-rs tells eight apart; all others count as one, and
//! an unprefixed name or an undeclared prefix is in the document's default: Atom under
//! `<feed>`, RSS otherwise), so declaring more prefixes buys no more repeats. Declarations
//! are read as quick-xml's namespace-aware reader (which feed-rs uses) reads them, but only
//! on elements that have an `xmlns` attribute: most have none. A cut element is skipped
//! with all its content; cuts separated only by text or comments merge into one range, so a
//! flood of cut items costs one range, not one each.

use std::borrow::Cow;
use std::ops::Range;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::super::{MAX_ITEMS, MAX_NAMES, ParseError};
use super::{
    Bounded, Edit, MAX_ATTRIBUTES, MAX_DEPTH, MAX_DISTINCT_NAMES, MAX_MEDIA_ELEMENTS,
    MAX_MEDIA_GROUPS, MAX_NAMESPACES, edited,
};

/// Applies the caps to an XML document (see the module docs). A document quick-xml cannot
/// tokenize to the end is cut up to the error and let through: feed-rs will stop there too.
pub(in crate::parse) fn bound_xml(xml: &[u8]) -> Result<Bounded<'_>, ParseError> {
    let mut reader = Reader::from_reader(xml);
    // As feed-rs configures it, so that both readers see the same elements.
    reader.config_mut().trim_markup_names_in_closing_tags = true;
    let mut scan = Scan::new(xml);
    loop {
        let at = position(&reader);
        let Ok(event) = reader.read_event() else {
            break;
        };
        match event {
            Event::Start(start) => {
                if scan.open(&start)? == Verdict::Keep {
                    continue;
                }
                match skip(&mut reader, scan.depth + 1)? {
                    Skipped::Closed => scan.cut(at..position(&reader)),
                    Skipped::Unfinished => {
                        scan.cut(at..xml.len());
                        break;
                    }
                }
            }
            Event::Empty(start) => match scan.open(&start)? {
                Verdict::Keep => scan.close(),
                Verdict::Cut => scan.cut(at..position(&reader)),
            },
            Event::End(_) => scan.close(),
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(scan.finish())
}

fn position(reader: &Reader<&[u8]>) -> usize {
    usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX)
}

fn too_deep() -> ParseError {
    ParseError::Malformed(format!("nesting deeper than {MAX_DEPTH} levels"))
}

/// How a cut element's content was skipped.
enum Skipped {
    /// Up to its end tag.
    Closed,
    /// The document ends, or stops being XML, before it.
    Unfinished,
}

/// Skips the content of a cut element at `depth`, up to and including its end tag, still
/// refusing nesting past [`MAX_DEPTH`].
fn skip(reader: &mut Reader<&[u8]>, depth: usize) -> Result<Skipped, ParseError> {
    let mut inner = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_)) => {
                inner += 1;
                if depth + inner > MAX_DEPTH {
                    return Err(too_deep());
                }
            }
            Ok(Event::End(_)) if inner == 0 => return Ok(Skipped::Closed),
            Ok(Event::End(_)) => inner -= 1,
            Ok(Event::Eof) | Err(_) => return Ok(Skipped::Unfinished),
            Ok(_) => {}
        }
    }
}

/// Refuses an element with more than [`MAX_ATTRIBUTES`] attributes; else whether it may
/// declare namespaces. Every attribute needs an `=`, so counting those is enough for any
/// real element; only past the cap are the attributes parsed (as feed-rs parses them) to
/// count exactly.
fn check_attributes(start: &BytesStart<'_>) -> Result<bool, ParseError> {
    let raw = start.attributes_raw().as_bytes();
    if raw.iter().filter(|b| **b == b'=').count() <= MAX_ATTRIBUTES {
        return Ok(raw.windows(5).any(|w| w[0] == b'x' && w[1..] == *b"mlns"));
    }
    let count = start
        .attributes()
        .with_checks(false)
        .filter(Result::is_ok)
        .count();
    if count > MAX_ATTRIBUTES {
        return Err(ParseError::Malformed(format!(
            "an element with more than {MAX_ATTRIBUTES} attributes"
        )));
    }
    Ok(true)
}

/// The namespaces feed-rs tells apart (its `xml::NS`), and one for all the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    Atom,
    Rss,
    Content,
    DublinCore,
    Media,
    Itunes,
    Podcast,
    Comments,
    Other,
}

impl Ns {
    /// feed-rs compares namespace names exactly, as here.
    fn of(name: &str) -> Ns {
        match name {
            "http://purl.org/rss/1.0/" => Ns::Rss,
            "http://www.w3.org/2005/Atom" => Ns::Atom,
            "http://purl.org/rss/1.0/modules/content/" => Ns::Content,
            "http://purl.org/dc/elements/1.1/" => Ns::DublinCore,
            "http://search.yahoo.com/mrss/" => Ns::Media,
            "http://www.itunes.com/dtds/podcast-1.0.dtd" => Ns::Itunes,
            "https://podcastindex.org/namespace/1.0" => Ns::Podcast,
            "http://wellformedweb.org/CommentAPI/" => Ns::Comments,
            _ => Ns::Other,
        }
    }
}

/// True for the elements feed-rs reads as text, or serializes as (X)HTML markup, in any
/// namespace: their content is never cut. `media:content` is the one `content` that holds
/// structure rather than text.
fn is_text(ns: Ns, local: &[u8]) -> bool {
    match local {
        b"content" => ns != Ns::Media,
        b"title" | b"subtitle" | b"summary" | b"description" | b"encoded" | b"rights"
        | b"copyright" | b"text" => true,
        _ => false,
    }
}

/// The part of a qualified name after its last `:`, as feed-rs takes it.
fn local_part(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|b| *b == b':') {
        Some(colon) => &name[colon + 1..],
        None => name,
    }
}

/// What the document's root says about where items are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    /// `<rss>`: items are `<item>` children of `<channel>` children of the root.
    Rss,
    /// `<rdf:RDF>` (RSS 1.0): items are `<item>` children of the root.
    Rdf,
    /// Atom `<feed>`: items are `<entry>` children of the root.
    Feed,
    /// A lone Atom `<entry>`: the root is the item.
    Entry,
    /// Anything else: feed-rs will refuse it, no items.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Keep,
    Cut,
}

/// How many children of each name one open element has had.
#[derive(Debug, Default)]
struct Level<'a> {
    /// A hash of each name in `names`, same order: compared first.
    hashes: Vec<u32>,
    /// (namespace, local name, children so far), at most [`MAX_DISTINCT_NAMES`].
    names: Vec<(Ns, &'a [u8], usize)>,
    /// This element's children named `item`/`entry` are the feed's items.
    holds_items: bool,
}

impl<'a> Level<'a> {
    fn reset(&mut self, holds_items: bool) {
        self.hashes.clear();
        self.names.clear();
        self.holds_items = holds_items;
    }

    /// Counts one more child named (`ns`, `local`); false when that is past a cap.
    fn admit(&mut self, ns: Ns, local: &'a [u8]) -> bool {
        let hash = name_hash(ns, local);
        let found = self
            .hashes
            .iter()
            .enumerate()
            .filter(|(_, h)| **h == hash)
            .map(|(i, _)| i)
            .find(|i| self.names[*i].0 == ns && self.names[*i].1 == local);
        match found {
            Some(i) if self.names[i].2 >= MAX_NAMES => false,
            Some(i) => {
                self.names[i].2 += 1;
                true
            }
            None if self.names.len() >= MAX_DISTINCT_NAMES => false,
            None => {
                self.hashes.push(hash);
                self.names.push((ns, local, 1));
                true
            }
        }
    }
}

/// FNV-1a over the namespace and the local name.
fn name_hash(ns: Ns, local: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5 ^ ns as u32;
    for byte in local {
        hash = (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193);
    }
    hash
}

/// The item being read, for the Media RSS caps.
#[derive(Debug)]
struct ItemScope {
    depth: usize,
    media_groups: usize,
}

/// The state of one pass.
struct Scan<'a> {
    xml: &'a [u8],
    /// Elements open (kept, or inside one whose content is not counted).
    depth: usize,
    /// `levels[d]` counts the children of the open element at depth `d`; `levels[0]` the
    /// document's top-level elements. Kept between elements, to reuse their allocations.
    levels: Vec<Level<'a>>,
    root: Option<Root>,
    /// The namespace of unprefixed names (and of undeclared prefixes).
    default_ns: Ns,
    /// Namespace declarations in scope, innermost last: (depth of the declaring element,
    /// prefix or empty for the default namespace, namespace or `None` for `xmlns=""`).
    bindings: Vec<(usize, Vec<u8>, Option<Ns>)>,
    /// Depth of the open element whose content is not counted, if any: a text construct,
    /// or an element with a prefix in a namespace feed-rs does not know (it skips those
    /// with all their content).
    uncounted: Option<usize>,
    item: Option<ItemScope>,
    items: usize,
    media_elements: usize,
    dropped_items: usize,
    dropped_elements: usize,
    /// The elements to cut, as edits that replace them with nothing.
    cuts: Vec<Edit>,
    /// An element was kept (opened or closed) since the last cut.
    kept_since_cut: bool,
}

impl<'a> Scan<'a> {
    fn new(xml: &'a [u8]) -> Self {
        Scan {
            xml,
            depth: 0,
            levels: vec![Level::default()],
            root: None,
            default_ns: Ns::Rss,
            bindings: Vec::new(),
            uncounted: None,
            item: None,
            items: 0,
            media_elements: 0,
            dropped_items: 0,
            dropped_elements: 0,
            cuts: Vec::new(),
            kept_since_cut: true,
        }
    }

    /// Records the namespace declarations of an element at `depth`, as quick-xml's resolver
    /// (which feed-rs uses) reads them: up to the first attribute it cannot parse. Refuses
    /// more than [`MAX_NAMESPACES`] in scope.
    fn declare(&mut self, start: &BytesStart<'_>, depth: usize) -> Result<(), ParseError> {
        for attribute in start.attributes().with_checks(false) {
            let Ok(attribute) = attribute else {
                break;
            };
            let key = attribute.key.into_inner().as_bytes();
            let prefix = match key.strip_prefix(b"xmlns") {
                Some(b"") => b"",
                Some(rest) => match rest.strip_prefix(b":") {
                    Some(prefix) => prefix,
                    None => continue,
                },
                None => continue,
            };
            let ns = (!attribute.value.is_empty()).then(|| Ns::of(&attribute.value));
            self.bindings.push((depth, prefix.to_vec(), ns));
            if self.bindings.len() > MAX_NAMESPACES {
                return Err(ParseError::Malformed(format!(
                    "more than {MAX_NAMESPACES} namespace declarations in scope"
                )));
            }
        }
        Ok(())
    }

    /// Forgets the namespace declarations of the element at `depth`.
    fn undeclare(&mut self, depth: usize) {
        while self.bindings.last().is_some_and(|(at, _, _)| *at == depth) {
            self.bindings.pop();
        }
    }

    /// The namespace of an element name, as feed-rs sees it: unprefixed names and
    /// undeclared prefixes are in the document's default. An unprefixed name bound to a
    /// namespace feed-rs does not know counts in the default too (the `repair` of a Userland
    /// `<rss>` namespace makes feed-rs read those as RSS).
    fn namespace(&self, name: &[u8]) -> Ns {
        let (prefix, prefixed): (&[u8], bool) = match name.iter().position(|b| *b == b':') {
            Some(colon) => (&name[..colon], true),
            None => (b"", false),
        };
        let bound = self
            .bindings
            .iter()
            .rev()
            .find(|(_, declared, _)| declared.as_slice() == prefix)
            .map(|(_, _, ns)| *ns);
        match bound {
            Some(Some(Ns::Other)) if !prefixed => self.default_ns,
            Some(Some(ns)) => ns,
            // `xml:` and `xmlns:` are bound to namespaces feed-rs does not know.
            _ if prefix == b"xml" || prefix == b"xmlns" => Ns::Other,
            _ => self.default_ns,
        }
    }

    /// The element's qualified name, borrowed from the document.
    fn name_of(&self, start: &BytesStart<'_>) -> Option<&'a [u8]> {
        let name = start.name().into_inner().as_bytes();
        let offset = (name.as_ptr() as usize).checked_sub(self.xml.as_ptr() as usize)?;
        self.xml.get(offset..offset + name.len())
    }

    /// A start tag (or an empty element): refuses it, keeps it (and opens it) or says to cut it.
    fn open(&mut self, start: &BytesStart<'_>) -> Result<Verdict, ParseError> {
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        let declares = check_attributes(start)?;
        if self.uncounted.is_some() {
            self.depth = depth;
            self.kept_since_cut = true;
            return Ok(Verdict::Keep);
        }
        let Some(name) = self.name_of(start) else {
            // Not borrowed from the document (never, with a slice reader): keep it uncounted.
            self.depth = depth;
            self.kept_since_cut = true;
            self.levels_at(depth).reset(false);
            return Ok(Verdict::Keep);
        };
        if declares {
            self.declare(start, depth)?;
        }
        let local = local_part(name);
        if self.root.is_none() {
            let root = match local {
                b"rss" => Root::Rss,
                b"RDF" => Root::Rdf,
                b"feed" => Root::Feed,
                b"entry" => Root::Entry,
                _ => Root::Other,
            };
            self.default_ns = match root {
                Root::Feed | Root::Entry => Ns::Atom,
                _ => Ns::Rss,
            };
            self.root = Some(root);
            if root == Root::Entry {
                self.item = Some(ItemScope {
                    depth,
                    media_groups: 0,
                });
            }
        }
        let ns = self.namespace(name);
        // feed-rs skips an element in a namespace it does not know, content and all: it
        // costs nothing there (but its attributes and depth), so it is neither counted nor
        // cut. But the root is what it is, and feed-rs finds the RSS `<channel>` by its
        // local name alone.
        let channel = self.root == Some(Root::Rss) && depth == 2 && local == b"channel";
        let skipped = ns == Ns::Other && depth > 1 && !channel;
        if !skipped && self.admit(depth, ns, local) == Verdict::Cut {
            self.undeclare(depth);
            return Ok(Verdict::Cut);
        }
        self.depth = depth;
        self.kept_since_cut = true;
        if skipped || is_text(ns, local) {
            self.uncounted = Some(depth);
        } else {
            let holds_items = match (self.root, depth) {
                (Some(Root::Rdf | Root::Feed), 1) => true,
                (Some(Root::Rss), 2) => local == b"channel",
                _ => false,
            };
            self.levels_at(depth).reset(holds_items);
        }
        Ok(Verdict::Keep)
    }

    /// Whether a child (`ns`, `local`) at `depth` of a structural parent is within the caps.
    fn admit(&mut self, depth: usize, ns: Ns, local: &'a [u8]) -> Verdict {
        let item_name: &[u8] = match self.root {
            Some(Root::Feed) => b"entry",
            _ => b"item",
        };
        let parent = &mut self.levels[depth - 1];
        if parent.holds_items && local == item_name {
            self.items += 1;
            if self.items > MAX_ITEMS {
                self.dropped_items += 1;
                return Verdict::Cut;
            }
            self.item = Some(ItemScope {
                depth,
                media_groups: 0,
            });
            return Verdict::Keep;
        }
        let group = local == b"group";
        let media = match &self.item {
            Some(item) if ns == Ns::Media => {
                if self.media_elements >= MAX_MEDIA_ELEMENTS
                    || (group && item.media_groups >= MAX_MEDIA_GROUPS)
                {
                    self.dropped_elements += 1;
                    return Verdict::Cut;
                }
                true
            }
            _ => false,
        };
        if !parent.admit(ns, local) {
            self.dropped_elements += 1;
            return Verdict::Cut;
        }
        if media {
            self.media_elements += 1;
            if let Some(item) = self.item.as_mut().filter(|_| group) {
                item.media_groups += 1;
            }
        }
        Verdict::Keep
    }

    /// The level counting the children of the element at `depth`.
    fn levels_at(&mut self, depth: usize) -> &mut Level<'a> {
        if self.levels.len() <= depth {
            self.levels.resize_with(depth + 1, Level::default);
        }
        &mut self.levels[depth]
    }

    /// An end tag, or the end of a kept empty element.
    fn close(&mut self) {
        if self.depth == 0 {
            return;
        }
        if self.uncounted == Some(self.depth) {
            self.uncounted = None;
        }
        if self
            .item
            .as_ref()
            .is_some_and(|item| item.depth == self.depth)
        {
            self.item = None;
        }
        self.undeclare(self.depth);
        self.depth -= 1;
        self.kept_since_cut = true;
    }

    fn cut(&mut self, range: Range<usize>) {
        match self.cuts.last_mut() {
            Some((last, _)) if !self.kept_since_cut => last.end = range.end,
            _ => self.cuts.push((range, b"")),
        }
        self.kept_since_cut = false;
    }

    fn finish(self) -> Bounded<'a> {
        let doc = if self.cuts.is_empty() {
            Cow::Borrowed(self.xml)
        } else {
            Cow::Owned(edited(self.xml, &self.cuts))
        };
        Bounded {
            doc,
            dropped_items: self.dropped_items,
            dropped_elements: self.dropped_elements,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::parse::{MAX_ITEMS, MAX_NAMES, ParseError, ParsedFeed, parse_feed};

    const MRSS: &str = "http://search.yahoo.com/mrss/";

    fn parse(doc: &str) -> ParsedFeed {
        parse_feed(doc.as_bytes(), None).unwrap_or_else(|err| panic!("should parse: {err}"))
    }

    fn rss_item(children: &str) -> String {
        format!(
            "<rss version=\"2.0\" xmlns:media=\"{MRSS}\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\
<channel><title>caps</title><item><title>x</title><link>https://caps.example/1</link>{children}</item>\
</channel></rss>"
        )
    }

    fn atom_entry(children: &str) -> String {
        format!(
            "<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:media=\"{MRSS}\"><title>caps</title>\
<entry><id>e1</id><title>x</title>{children}</entry></feed>"
        )
    }

    #[test]
    fn repeated_children_are_capped_per_parent() {
        let over = MAX_NAMES + 8;
        let repeat = |unit: &str| -> String {
            (0..over)
                .map(|n| unit.replace("{n}", &n.to_string()))
                .collect()
        };
        // (case, document, categories kept, authors kept)
        let cases = [
            (
                "rss categories",
                rss_item(&repeat("<category>c{n}</category>")),
                MAX_NAMES,
                0,
            ),
            (
                "rss dc:creator",
                rss_item(&repeat("<dc:creator>a{n}</dc:creator>")),
                0,
                MAX_NAMES,
            ),
            (
                "undeclared prefixes count as the same name",
                rss_item(&repeat("<p{n}:category>c{n}</p{n}:category>")),
                MAX_NAMES,
                0,
            ),
            (
                "rss media:content",
                rss_item(&repeat(
                    "<media:content url=\"https://caps.example/{n}.jpg\"/>",
                )),
                0,
                0,
            ),
            (
                "atom categories",
                atom_entry(&repeat("<category term=\"c{n}\"/>")),
                MAX_NAMES,
                0,
            ),
            (
                "atom authors",
                atom_entry(&repeat("<author><name>a{n}</name></author>")),
                0,
                MAX_NAMES,
            ),
            (
                "atom links",
                atom_entry(&repeat(
                    "<link rel=\"related\" href=\"https://caps.example/{n}\"/>",
                )),
                0,
                0,
            ),
        ];
        for (case, doc, categories, authors) in cases {
            let feed = parse(&doc);
            assert_eq!(feed.dropped_elements, over - MAX_NAMES, "{case}");
            assert_eq!(feed.dropped_items, 0, "{case}");
            let item = &feed.items[0];
            assert_eq!(item.title, "x", "{case}");
            assert_eq!(item.categories.len(), categories, "{case}");
            assert_eq!(item.authors.len(), authors, "{case}");
            if categories > 0 {
                assert_eq!(item.categories[0], "c0", "{case}: the first ones are kept");
            }
        }
    }

    #[test]
    fn the_name_tracker_stays_bounded_under_a_flood_of_names() {
        let names: String = (0..100_000).map(|n| format!("<n{n}/>")).collect();
        let doc = rss_item(&format!("{names}<category>late</category>"));
        let feed = parse(&doc);
        // title, link and the first distinct names fill the parent's table.
        assert_eq!(
            feed.dropped_elements,
            100_000 + 1 - (MAX_DISTINCT_NAMES - 2)
        );
        assert!(
            feed.items[0].categories.is_empty(),
            "a name past the table is cut"
        );
    }

    #[test]
    fn elements_in_namespaces_feed_rs_does_not_know_are_not_counted() {
        // RSS 1.0 lists its items again in rdf:Seq, which feed-rs skips.
        let items: String = (0..50)
            .map(|n| format!("<item rdf:about=\"https://r.example/{n}\"><title>t{n}</title><link>https://r.example/{n}</link></item>"))
            .collect();
        let lis: String = (0..50)
            .map(|n| format!("<rdf:li resource=\"https://r.example/{n}\"/>"))
            .collect();
        let doc = format!(
            "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://purl.org/rss/1.0/\">\
<channel><title>r</title><items><rdf:Seq>{lis}</rdf:Seq></items></channel>{items}</rdf:RDF>"
        );
        let bounded = bound_xml(doc.as_bytes()).expect("within the caps");
        assert!(matches!(bounded.doc, Cow::Borrowed(_)));
        assert_eq!(parse(&doc).items.len(), 50);

        // feed-rs reads an RSS channel in any namespace.
        let items: String = (0..MAX_ITEMS + 7)
            .map(|n| format!("<item><guid>{n}</guid></item>"))
            .collect();
        let doc = format!(
            "<rss version=\"2.0\" xmlns:x=\"urn:x\"><x:channel><title>c</title>{items}</x:channel></rss>"
        );
        let feed = parse(&doc);
        assert_eq!((feed.items.len(), feed.dropped_items), (MAX_ITEMS, 7));

        let unknown: String = (0..100_000).map(|n| format!("<x:n{n}/>")).collect();
        let doc = rss_item(&format!(
            "<x:ext xmlns:x=\"urn:x\">{unknown}</x:ext>{unknown}<category>kept</category>"
        ))
        .replace("<rss ", "<rss xmlns:x=\"urn:x\" ");
        let feed = parse(&doc);
        assert_eq!(feed.dropped_elements, 0);
        assert_eq!(feed.items[0].categories, ["kept"]);
    }

    #[test]
    fn text_constructs_keep_all_their_markup() {
        let paragraphs: String = (0..300).map(|n| format!("<p>w{n}</p>")).collect();
        let expected: Vec<String> = (0..300).map(|n| format!("w{n}")).collect();
        let xhtml = atom_entry(&format!(
            "<content type=\"xhtml\"><div xmlns=\"http://www.w3.org/1999/xhtml\">{paragraphs}</div></content>"
        ));
        let bounded = bound_xml(xhtml.as_bytes()).expect("within the caps");
        assert!(matches!(bounded.doc, Cow::Borrowed(_)));
        let feed = parse(&xhtml);
        assert_eq!(feed.items[0].content, expected.join(" "));
        assert_eq!(feed.dropped_elements, 0);

        let summary = atom_entry(&format!("<summary type=\"xhtml\">{paragraphs}</summary>"));
        assert_eq!(parse(&summary).items[0].summary, expected.join(" "));
    }

    #[test]
    fn media_groups_are_capped_per_item() {
        let groups: String = (0..10)
            .map(|n| {
                format!(
                    "<media:group><media:content url=\"https://caps.example/{n}.mp4\"/>\
<media:description>caption {n}</media:description></media:group>"
                )
            })
            .collect();
        let kept: Vec<String> = (0..MAX_MEDIA_GROUPS)
            .map(|n| format!("caption {n}"))
            .collect();
        for doc in [rss_item(&groups), atom_entry(&groups)] {
            let feed = parse(&doc);
            assert_eq!(feed.dropped_elements, 10 - MAX_MEDIA_GROUPS);
            // feed-rs does not keep the groups' order.
            assert!(
                kept.contains(&feed.items[0].summary),
                "{}",
                feed.items[0].summary
            );
        }
        // Nested groups count too.
        let nested = format!(
            "{}<media:content url=\"https://caps.example/v.mp4\"/>{}",
            "<media:group>".repeat(10),
            "</media:group>".repeat(10)
        );
        assert_eq!(parse(&rss_item(&nested)).dropped_elements, 1);
    }

    #[test]
    fn media_elements_are_capped_per_document() {
        let per_item = 30;
        let items = MAX_MEDIA_ELEMENTS / per_item + 2;
        let contents: String = (0..per_item)
            .map(|n| format!("<media:content url=\"https://caps.example/{n}.jpg\"/>"))
            .collect();
        let mut doc =
            format!("<rss version=\"2.0\" xmlns:media=\"{MRSS}\"><channel><title>t</title>");
        for n in 0..items {
            doc.push_str(&format!("<item><guid>{n}</guid>{contents}</item>"));
        }
        doc.push_str("</channel></rss>");
        let feed = parse(&doc);
        assert_eq!(feed.items.len(), items);
        assert_eq!(feed.dropped_elements, items * per_item - MAX_MEDIA_ELEMENTS);
    }

    #[test]
    fn items_past_the_cap_are_cut_as_one_range() {
        let mut doc = String::from("<rss version=\"2.0\"><channel><title>t</title>");
        for n in 0..MAX_ITEMS + 1000 {
            doc.push_str(&format!("<item><guid>{n}</guid></item>\n<!-- c -->"));
        }
        doc.push_str("<ttl>5</ttl></channel></rss>");
        let bounded = bound_xml(doc.as_bytes()).expect("within the caps");
        assert_eq!(bounded.dropped_items, 1000);
        let text = String::from_utf8(bounded.doc.into_owned()).expect("utf-8");
        // The comments between cut items go with them: one range from the first cut item
        // to the end of the last.
        let tail = format!(
            "<item><guid>{}</guid></item>\n<!-- c -->\n<!-- c --><ttl>5</ttl></channel></rss>",
            MAX_ITEMS - 1
        );
        assert!(text.ends_with(&tail), "{}", &text[text.len() - 120..]);
        assert_eq!(
            parse(&doc).ttl,
            Some(5),
            "what follows the cut items is read"
        );
    }

    #[test]
    fn a_document_broken_past_the_cap_is_cut_and_still_malformed() {
        let mut doc = String::from("<rss version=\"2.0\"><channel><title>t</title>");
        for n in 0..MAX_ITEMS + 5 {
            doc.push_str(&format!("<item><guid>{n}</guid></item>"));
        }
        doc.push_str("<item><title>unclosed");
        let bounded = bound_xml(doc.as_bytes()).expect("cut");
        assert_eq!(bounded.dropped_items, 6);
        match parse_feed(doc.as_bytes(), None) {
            Err(err @ ParseError::Malformed(_)) => {
                assert!(err.to_string().starts_with("malformed feed: "), "{err}")
            }
            other => panic!("expected malformed, got {other:?}"),
        }
    }

    fn nested(open: &str, close: &str, levels: usize, item: bool) -> String {
        let mut doc = String::from(
            "<rss version=\"2.0\" xmlns:media=\"http://search.yahoo.com/mrss/\" \
xmlns:itunes=\"http://www.itunes.com/dtds/podcast-1.0.dtd\"><channel><title>deep</title>",
        );
        if item {
            doc.push_str("<item><title>x</title><link>https://deep.example/1</link>");
        }
        doc.push_str(&open.repeat(levels));
        doc.push_str(&close.repeat(levels));
        if item {
            doc.push_str("</item>");
        }
        doc.push_str("</channel></rss>");
        doc
    }

    #[test]
    fn documents_nested_100000_levels_deep_are_refused_without_recursing() {
        // Without the guard, nested media:group or itunes:category abort the process with a
        // stack overflow after a few thousand levels.
        for (open, close, item) in [
            ("<media:group>", "</media:group>", true),
            ("<itunes:category text=\"a\">", "</itunes:category>", false),
            ("<div>", "</div>", true),
        ] {
            let doc = nested(open, close, 100_000, item);
            for doc in [doc.clone(), format!("junk before the root {doc}")] {
                match parse_feed(doc.as_bytes(), None) {
                    Err(err @ ParseError::Malformed(_)) => {
                        assert_eq!(
                            err.to_string(),
                            format!("malformed feed: nesting deeper than {MAX_DEPTH} levels")
                        );
                        assert_eq!(err.kind(), "malformed");
                    }
                    other => panic!("{open}: expected a nesting error, got {other:?}"),
                }
            }
        }
    }

    #[test]
    fn nesting_up_to_the_limit_is_parsed_on_a_small_stack() {
        // The rss/channel(/item) levels count too. Nested itunes:category is read by
        // feed-rs level by level; groups past MAX_MEDIA_GROUPS are cut, but the depth of
        // what is cut still counts.
        for (open, close, item, outer) in [
            (
                "<itunes:category text=\"a\">",
                "</itunes:category>",
                false,
                2,
            ),
            ("<media:group>", "</media:group>", true, 3),
        ] {
            let doc = nested(open, close, MAX_DEPTH - outer, item);
            let parsed = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || parse_feed(doc.as_bytes(), None).map(|f| f.title))
                .expect("thread")
                .join()
                .expect("no crash");
            assert_eq!(parsed.ok().flatten().as_deref(), Some("deep"), "{open}");
            let too_deep = nested(open, close, MAX_DEPTH - outer + 1, item);
            assert!(
                matches!(
                    parse_feed(too_deep.as_bytes(), None),
                    Err(ParseError::Malformed(_))
                ),
                "{open}"
            );
        }
    }

    #[test]
    fn unclosed_deep_nesting_is_refused_too() {
        let doc = format!(
            "<rss version=\"2.0\"><channel>{}",
            "<a x='1>2'>".repeat(50_000)
        );
        assert!(matches!(
            parse_feed(doc.as_bytes(), None),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn markup_inside_cdata_comments_and_attributes_does_not_count() {
        let noise = "<a><b><c>".repeat(200);
        let doc = format!(
            "<?xml version=\"1.0\"?><!-- {noise} --><rss version=\"2.0\"><channel><title>t</title>\
<item><title>x</title><link>https://n.example/1</link>\
<description><![CDATA[{noise}]]></description><category domain=\"{}\">c</category>\
</item></channel></rss>",
            noise.replace('<', "&lt;")
        );
        let feed = parse_feed(doc.as_bytes(), None).expect("parses");
        assert_eq!(feed.items.len(), 1);
    }

    #[test]
    fn namespace_declarations_past_the_cap_make_the_document_malformed() {
        // 300 levels would be refused for their depth: 200 levels of 8 declarations each
        // stay within it and put 1,600 declarations in scope.
        let declarations: String = (0..8)
            .map(|n| format!(" xmlns:p{n}=\"urn:x:{n}\""))
            .collect();
        let open = format!("<g{declarations}>").repeat(200);
        let doc = format!(
            "<rss version=\"2.0\"><channel><title>t</title><item><title>x</title>{open}</item></channel></rss>"
        );
        match parse_feed(doc.as_bytes(), None) {
            Err(ParseError::Malformed(why)) => assert_eq!(
                why,
                format!("more than {MAX_NAMESPACES} namespace declarations in scope")
            ),
            other => panic!("{other:?}"),
        }
        // A root declaring a few dozen, as real feeds do, is fine.
        let declarations: String = (0..40)
            .map(|n| format!(" xmlns:p{n}=\"urn:x:{n}\""))
            .collect();
        let doc = format!(
            "<rss version=\"2.0\"{declarations}><channel><title>t</title><item><title>x</title></item></channel></rss>"
        );
        assert_eq!(
            parse_feed(doc.as_bytes(), None)
                .expect("parses")
                .items
                .len(),
            1
        );
    }
}
