# A small XML well-formedness check for the tests (xmllint may be missing):
#   awk -v root=svg -f tests/cli/xmlcheck.awk FILE
# Exits 0 when FILE is one element `root` whose tags nest and balance,
# whose attributes are name="value" pairs, and whose text and attribute
# values hold no raw '<' and no '&' that does not start an entity.
# Comments, processing instructions and a DOCTYPE (before the root) are
# skipped; CDATA is not supported (nothing here writes it).  The input is
# consumed line by line (a tag may span lines), so big files stay fast.
function fail(msg) { print FILENAME ": " msg > "/dev/stderr"; bad = 1; exit 1 }
function check_text(t, where,    rest, k) {
    if (index(t, ">") && where == "attribute") fail("raw '>' in an attribute value")
    rest = t
    while ((k = index(rest, "&")) > 0) {
        rest = substr(rest, k)
        if (!match(rest, /^&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/)) fail("raw '&' in " where)
        rest = substr(rest, 2)
    }
}
function check_attributes(a) {
    # a: what follows the element name, without the closing '>' or '/>'
    while (a != "") {
        if (!match(a, /^[ \t\n]+[A-Za-z_:][-A-Za-z0-9_:.]*[ \t\n]*=[ \t\n]*"[^"<]*"/)) {
            if (a ~ /^[ \t\n]*$/) return
            fail("bad attribute syntax near: " substr(a, 1, 40))
        }
        check_text(substr(a, 1, RLENGTH), "attribute")
        a = substr(a, RLENGTH + 1)
    }
}
function text_between(text) {
    check_text(text, "text")
    if (depth == 0 && text !~ /^[ \t\n]*$/) fail("text outside the root element")
}
# One markup item at the start of s (s begins with '<'); 0 when it is not complete yet.
function one_tag(    e, tag, name, self) {
    if (substr(s, 1, 4) == "<!--") {
        e = index(s, "-->"); if (!e) return 0
        s = substr(s, e + 3); return 1
    }
    e = index(s, ">")
    if (!e) return 0
    tag = substr(s, 2, e - 2)
    s = substr(s, e + 1)
    if (substr(tag, 1, 1) == "?") {
        if (substr(tag, length(tag), 1) != "?") fail("bad processing instruction")
        return 1
    }
    if (substr(tag, 1, 8) == "!DOCTYPE") { if (roots) fail("DOCTYPE after the root"); return 1 }
    if (substr(tag, 1, 1) == "/") {
        name = substr(tag, 2); sub(/[ \t\n]+$/, "", name)
        if (depth == 0) fail("closing </" name "> with nothing open")
        if (stack[depth] != name) fail("</" name "> closes <" stack[depth] ">")
        depth--; return 1
    }
    self = substr(tag, length(tag), 1) == "/"
    if (self) tag = substr(tag, 1, length(tag) - 1)
    if (!match(tag, /^[A-Za-z_:][-A-Za-z0-9_:.]*/)) fail("bad element name in <" substr(tag, 1, 40))
    name = substr(tag, 1, RLENGTH)
    check_attributes(substr(tag, RLENGTH + 1))
    if (depth == 0) {
        roots++
        if (roots > 1) fail("more than one root element")
        if (root != "" && name != root) fail("root element is <" name ">, expected <" root ">")
    }
    if (!self) stack[++depth] = name
    return 1
}
{
    s = s $0 "\n"
    while ((k = index(s, "<")) > 0) {
        text_between(substr(s, 1, k - 1))
        s = substr(s, k)
        if (!one_tag()) break
    }
    if (!index(s, "<")) { text_between(s); s = "" }
}
END {
    if (bad) exit 1
    if (s != "") fail("unclosed tag or comment at the end")
    if (depth) fail("<" stack[depth] "> is never closed")
    if (!roots) fail("no root element")
    exit 0
}
