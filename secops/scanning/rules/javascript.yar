/*
 * Obfuscated JavaScript inside HTML: decoders feeding eval or document.write, the
 * "p,a,c,k,e,r" packer, long runs of hex escapes and heavy String.fromCharCode use.
 * The HTML marker keeps plain .js libraries (which minify legitimately) out of scope:
 * the document must open as markup (after optional white space or a UTF-8 byte-order
 * mark), so a script bundle that merely quotes "<script" is not HTML.
 */
rule SECOPS_JS_Obfuscated_In_HTML
{
    meta:
        severity = "high"
        description = "Obfuscated JavaScript in an HTML document"
    strings:
        $html = "<script" nocase
        $o1 = /eval\s*\(\s*(unescape|atob|decodeURIComponent|escape)\s*\(/ nocase
        $o2 = /document\.write\s*\(\s*(unescape|atob|decodeURIComponent)\s*\(/ nocase
        $o3 = "eval(function(p,a,c,k,e," nocase
        $hex = /(\\x[0-9a-fA-F]{2}){40}/
        $fcc = "String.fromCharCode(" nocase
    condition:
        (
            uint8(0) == 0x3C or (uint16be(0) == 0xEFBB and uint8(2) == 0xBF and uint8(3) == 0x3C) or
            for any i in (1 .. 64) : (
                uint8(i) == 0x3C and for all j in (0 .. i - 1) : (
                    uint8(j) == 0x20 or uint8(j) == 0x09 or uint8(j) == 0x0A or uint8(j) == 0x0D))
        ) and $html and (any of ($o*) or $hex or #fcc > 10)
}
