/*
 * HTML that loads a page nobody can see and decodes or hides script: an iframe that is
 * hidden (display:none, visibility:hidden, zero or one pixel, off-screen by a large
 * negative offset), written in markup or created by script, together with eval, atob,
 * unescape/document.write decoding or a property name written in hex escapes
 * (window["\x65\x76\x61\x6c"]). Hidden iframes alone are common (tag managers,
 * single sign-on helpers) and so is minified eval; the pair is the drive-by pattern.
 * The document must open as markup: JavaScript bundles that build iframes and quote
 * markup are not HTML pages.
 */
rule SECOPS_HTML_Hidden_Iframe_Decoder
{
    meta:
        severity = "high"
        description = "HTML with a hidden or off-screen iframe and decoded or evaluated script"
    strings:
        $html1 = "<html" nocase
        $html2 = "<script" nocase
        $html3 = "<iframe" nocase
        $f1 = /<iframe[^>]{0,400}(width|height)\s*=\s*["']?[01](px)?["'\s\/>]/ nocase
        $f2 = /<iframe[^>]{0,400}(display\s*:\s*none|visibility\s*:\s*hidden)/ nocase
        $f3 = /<iframe[^>]{0,400}(left|top)\s*:\s*-\d{3,}\s*px/ nocase
        $f4 = /createElement\s*\(\s*["']iframe["']\s*\)/ nocase
        $g1 = /\.style\.(display\s*=\s*["']none|visibility\s*=\s*["']hidden|(left|top)\s*=\s*["']-\d{3,})/ nocase
        $g2 = /\.(width|height)\s*=\s*["']?[01]["']?\s*[;\n]/ nocase
        $j1 = /\beval\s*\(/
        $j2 = /\batob\s*\(/
        $j3 = /\[\s*["'](\\x[0-9a-fA-F]{2}){3,}["']\s*\]/
        $j4 = /document\.write\s*\(\s*(unescape|atob|decodeURIComponent)\s*\(/ nocase
    condition:
        // an HTML document (it opens with markup after optional white space or a UTF-8
        // byte-order mark), not a script bundle that quotes markup
        (
            uint8(0) == 0x3C or (uint16be(0) == 0xEFBB and uint8(2) == 0xBF and uint8(3) == 0x3C) or
            for any i in (1 .. 64) : (
                uint8(i) == 0x3C and for all j in (0 .. i - 1) : (
                    uint8(j) == 0x20 or uint8(j) == 0x09 or uint8(j) == 0x0A or uint8(j) == 0x0D))
        ) and any of ($html*) and
        (any of ($f1, $f2, $f3) or ($f4 and any of ($g*))) and any of ($j*)
}
