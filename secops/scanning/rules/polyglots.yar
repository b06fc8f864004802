/*
 * Image/script polyglots: a file that is a valid GIF or JPEG for an image viewer and
 * also parses as JavaScript or carries HTML or server-side script for a browser or an
 * interpreter that is tricked into reading it (content sniffing, an upload served with
 * the wrong type, an include of an "image").
 *
 * JavaScript: the GIF header "GIF89a" is a valid identifier and the next two bytes (the
 * logical screen width) written as "/" "*" open a comment, closed later by "*" "/"
 * followed by code; in a JPEG the first segment's length bytes play that role (Latin-1
 * decoding makes FF D8 FF E0 identifier characters). HTML or script markup anywhere in
 * the image (a comment segment, metadata, trailing bytes) is the other class; XMP
 * metadata (<x:xmpmeta>, <?xpacket>) is not such markup.
 */
rule SECOPS_Polyglot_Image_JavaScript
{
    meta:
        severity = "high"
        description = "image whose header also parses as JavaScript (image/script polyglot)"
    strings:
        $close = /\*\/\s{0,16}[=;(]\s{0,16}[A-Za-z_$(]/
    condition:
        (
            (uint32be(0) == 0x47494638 and uint16be(4) & 0xFDFF == 0x3961 and
             uint16be(6) == 0x2F2A) or
            (uint16be(0) == 0xFFD8 and uint8(2) == 0xFF and uint16be(4) == 0x2F2A)
        ) and $close
}

rule SECOPS_Polyglot_Image_Markup
{
    meta:
        severity = "high"
        description = "GIF, JPEG or PNG image carrying HTML or server-side script"
    strings:
        $h1 = "<script" nocase
        $h2 = "<iframe" nocase
        $h3 = "<html" nocase
        $h4 = "<body" nocase
        $h5 = /<svg[^>]{0,200}\bon[a-z]{3,12}\s*=/ nocase
        $h6 = /<img[^>]{0,200}\bon(error|load)\s*=/ nocase
        $p1 = "<?php" nocase
        $p2 = /<\?=\s*\$/
        $p3 = /<%[@=]?\s*(eval|execute|response|page|Runtime)/ nocase
    condition:
        (uint32be(0) == 0x47494638 or (uint16be(0) == 0xFFD8 and uint8(2) == 0xFF) or
         uint32be(0) == 0x89504E47) and any of them
}
