/*
 * EICAR anti-virus test file, exactly as published by EICAR: the file starts with the
 * 68-byte test string, may be followed by white space only, and is at most 128 bytes.
 * The white space the definition allows is space, tab, CR, LF and Ctrl-Z (0x1A), nothing
 * else (no vertical tab or form feed). The same string buried inside other content, or
 * followed by anything else, is deliberately NOT a match.
 */
rule SECOPS_EICAR_Test_File
{
    meta:
        severity = "critical"
        description = "EICAR anti-virus test file"
        reference = "https://www.eicar.org/download-anti-malware-testfile/"
    strings:
        $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    condition:
        filesize <= 128 and $eicar at 0 and
        (
            filesize == 68 or
            for all i in (68 .. filesize - 1) : (
                uint8(i) == 0x20 or uint8(i) == 0x09 or uint8(i) == 0x0A or
                uint8(i) == 0x0D or uint8(i) == 0x1A
            )
        )
}
