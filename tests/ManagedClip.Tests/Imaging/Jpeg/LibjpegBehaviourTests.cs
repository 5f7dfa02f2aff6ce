using System.Security.Cryptography;
using ManagedClip.Imaging.Jpeg;

namespace ManagedClip.Tests.Imaging.Jpeg;

/// <summary>
/// Files the reference set does not cover, against libjpeg-turbo itself: progressive files whose last scans are
/// missing (libjpeg then smooths the blocks whose low frequencies are still coarse) and files whose compressed data
/// is damaged (libjpeg warns, fills the rest of the segment with zeros, resynchronises at restart markers).
/// </summary>
/// <remarks>
/// The expected SHA-256 of each decoded image ([H, W, C] bytes as Pillow returns them, CMYK inverted) was computed
/// on 2026-12-05 with libjpeg-turbo 2.1.5 (Debian 1:2.1.5-2, the build of the reference set's README) set up as
/// Pillow 9.4 sets it up (output colour space RGB / CMYK / grey, every other parameter at libjpeg's default), once
/// with its SIMD code and once with <c>JSIMD_FORCENONE=1</c>; only files where both agree are listed, so these are
/// also Pillow's pixels. The files are rebuilt here from the reference JPEGs by the same cuts and the same
/// deterministic damage (<see cref="JpegDamage"/>).
/// </remarks>
public class LibjpegBehaviourTests
{
    /// <summary>Reference file, scans kept, SHA-256 of libjpeg-turbo's output.</summary>
    public static TheoryData<string, int, string> IncompleteProgressive => new()
    {
        { "cjpeg_arith_progressive_444", 1, "38e1f0dabab9c2ae420e5994f4e3febf1ac6212e1eddfa7127d9db1e9194af1c" },
        { "cjpeg_arith_progressive_444", 2, "a2af4fa81142b1fb6d2abeb5fd279ddc4a109164026e068be5186e14178a31b5" },
        { "cjpeg_arith_progressive_444", 3, "ea43a42e45cf909403d60d45a4236d24e7992c4f4712659def2cbd152ed9df62" },
        { "cjpeg_arith_progressive_444", 4, "f4a6717e7fb1a0aae45c3ac17e3a0acc172f24ca64c5ecfcbdedc3dec5f8ef26" },
        { "cjpeg_arith_progressive_444", 5, "356f490bc93b26389d8239b3123547b8faa2b98ef5e5c2a9e923ab356f2c6770" },
        { "cjpeg_arith_progressive_444", 6, "eed51d2ffe2107bc7a06d28ed76766bee6f09a4e0c87a2f3ea557c47fffe7cbd" },
        { "cjpeg_arith_progressive_444", 7, "7a2b1a6068671b83564fc9f78b35583ab8f4d2bae47742833b36b03147f9d265" },
        { "cjpeg_arith_progressive_444", 8, "ff51aa73dd2196fc4030fa09ed57eff37dc11c0bf87f850633c35d3b199157c3" },
        { "cjpeg_arith_progressive_444", 9, "beaf186f001c964d8a249e62e64669e6e860543cc048868744ee3ab7e3f69888" },
        { "cjpeg_progressive_spectral_scans", 1, "7d9c5d88c88cb5fa697ada255a869be9e0caeb4dd6af8505350a510f1e87521f" },
        { "cjpeg_progressive_spectral_scans", 2, "bcf8227a55d545686de0a21c645f215433ce5fde5765666845e65ab11fb1497c" },
        { "cjpeg_progressive_spectral_scans", 3, "14be6f9bc1509f7396d67ab5df7237e3094ce2ef1b53ac19946cbfadacfd8d35" },
        { "cjpeg_progressive_spectral_scans", 4, "5515207cd3930460729dd7033fc0f1801fc4314a8d01d4f79c3d3fdc662f23c4" },
        { "cjpeg_restart_progressive_420", 1, "893e19dbe0b7427de33e7b92b7e01f04a0e47a5f95e541c46825e9576fd3dbb1" },
        { "cjpeg_restart_progressive_420", 2, "2f17db57cd72297667591b55ad181567cc64ce406f0d1a4d71a830ca391c5b62" },
        { "cjpeg_restart_progressive_420", 3, "0a28a0175e5cb68e34b0da6c7963835c0a3021b23e50bde78d304d411c921e4f" },
        { "cjpeg_restart_progressive_420", 4, "218345b533657bf727b8e14b090874ff6235ef684af8f014b5711dee6b664da0" },
        { "cjpeg_restart_progressive_420", 5, "bc6d1c1351e63a53d8cff2f831269e5e7f61e1d78c712677932013b39df0d515" },
        { "cjpeg_restart_progressive_420", 6, "b752ac70a858d3fc0d3b1aa8e0a96ef6be84acaebd27619ba6542e04fa3a52a3" },
        { "cjpeg_restart_progressive_420", 7, "f027c796fd80bd908d07cdf9f2c47dc2d43322344ccc02cf4c11ba4b2344941b" },
        { "cjpeg_restart_progressive_420", 8, "e1627ca70948190ec8f9b859c8c099e73ad361f923321cc9d065454c77582760" },
        { "cjpeg_restart_progressive_420", 9, "804758221732c5454caf2b9d8c06e172f68e769a4a77e5d51ecaad6dbb9fef27" },
        { "cjpeg_sequential_noninterleaved", 1, "ae5de3d6eb6c98da843148b09e8dfa6c93d03cbe098610ca3c50d969fb93ec37" },
        { "cjpeg_sequential_noninterleaved", 2, "793109ea1aaa771089e502986eb4464c5ec9a461833b3d6bdd964a8a75aa6571" },
        { "pil_gray_q70_progressive", 1, "0ef2b7c888bba1e970852f61975e8fe4efec1f9b8f955173fda60fcd343cf9e1" },
        { "pil_gray_q70_progressive", 2, "b8684b6171a4c2c5a05062eb96d0d844964f50e5bc47baf0058a9340e797d53f" },
        { "pil_gray_q70_progressive", 3, "c1dc77226f9fba0629124eb575abf57fd034afc49ea09931011043b96c72e47e" },
        { "pil_gray_q70_progressive", 4, "7748031e95b5e872814fa06f03e76a3cf202788095eb797fa5f62260196c5aa1" },
        { "pil_gray_q70_progressive", 5, "90badde7b3109f1894c0900fe2b188d1a5c0485fbc2d5c7943c8c9943f95beb4" },
        { "pil_q80_420_progressive", 1, "ea8822178d58c51dd1581516b85c0950e85d1e6c382ef7a7415d8261328902ca" },
        { "pil_q80_420_progressive", 2, "60b5081305cdfcd6106878af035a1ec1850e8e1eaf1b54003ad59e44938ff11e" },
        { "pil_q80_420_progressive", 3, "82bfe8540abf3e0eced40bf5e6dac3db618bb6d27bcff9acc323cad7aa7be6b5" },
        { "pil_q80_420_progressive", 4, "b54739f70d13f43466d4b21dd0f3e1953710c11cc3cd2e30a6fb868c619471a1" },
        { "pil_q80_420_progressive", 5, "2144540a3f1dc6ca595be2bcbc60513c950c1a0f4e1cec1faf100c4f106fa5f7" },
        { "pil_q80_420_progressive", 6, "ee973f02285970538af55fd9bb78e4e731b53df3a7ebcf7b91d18df702a142fd" },
        { "pil_q80_420_progressive", 7, "4cf8597b53593eeb8ce262cc8f8ec0aeaf12b90423af2db08360644304ad033c" },
        { "pil_q80_420_progressive", 8, "8cd196679893a9260874fd7e567801512e3722f16b5cb98c47ef94a63099e55d" },
        { "pil_q80_420_progressive", 9, "101d82823a18ff57070bc1fc495784ed1000a710eaeaeaabe615fd381796e64a" },
        { "pil_q92_444_progressive_optimize", 1, "bb15a4e06731b33a75e3d6a5ea87f643e036282ec0b5581825f1711aca8ab614" },
        { "pil_q92_444_progressive_optimize", 2, "06cb822cda66a96f010333eae45b8140caa8423a9a751a5b04907ab2e5fba3f2" },
        { "pil_q92_444_progressive_optimize", 3, "4818ce8bf48fbc95759027a8255935f9a0f0b07fdd92c6bfad46770481719ff2" },
        { "pil_q92_444_progressive_optimize", 4, "9a8f9bc2ad6bda7cf267f74cc3f22a5e15bcef488ef11df865f821e194beef45" },
        { "pil_q92_444_progressive_optimize", 5, "ee899a433faef07123718b748cafc456acc236e30d1a61b59aa74f914b013b3d" },
        { "pil_q92_444_progressive_optimize", 6, "28f81b63f514ec5543f0b1ac5c69e8b97dffdae40b7a4ed76e8458e9d402b88e" },
        { "pil_q92_444_progressive_optimize", 7, "47d91024f281f2989a528f19bcac1db6d07828edcf8a69b2033cbe177042e66e" },
        { "pil_q92_444_progressive_optimize", 8, "9f8e59c652ea5cdb3f1641991a7949a28699c53fc05ab9c1d2f355b06d2bc293" },
        { "pil_q92_444_progressive_optimize", 9, "577c7b39c468c55dd7af2afe59748657c22ef71343d0ab81aa19710861b578bd" },
    };

    /// <summary>
    /// The first <c>scans</c> scans and then EOI: block smoothing (jdcoefct.c <c>decompress_smooth_data</c>) decides the
    /// pixels, except in the sequential file. Smoothing off, 44 of these 47 images differ from libjpeg's.
    /// </summary>
    [Theory]
    [MemberData(nameof(IncompleteProgressive))]
    public void IncompleteProgressiveFileDecodesAsLibjpeg(string stem, int scans, string sha256)
    {
        var jpeg = File.ReadAllBytes(JpegReferenceFile.Named(stem).Path);
        int end = JpegEditor.ScanDataEnds(jpeg)[scans - 1];
        byte[] cut = [.. jpeg.AsSpan(0, end), 0xFF, 0xD9];
        var image = JpegDecoder.Decode(cut, stem, 100_000_000);
        Assert.Equal(sha256, Convert.ToHexStringLower(SHA256.HashData(image.Bytes!)));
    }

    /// <summary>Reference file, damage seed, SHA-256 of libjpeg-turbo's output (it reported corrupt data for each).</summary>
    public static TheoryData<string, int, string> DamagedData => new()
    {
        { "cjpeg_arith_420", 0, "dc5e445a4bb9e85e76183ec1e4178b4a016c5ba39cdda388574422414086177f" },
        { "cjpeg_arith_420", 1, "f7c879ed0bb02439362d8669670fdf2ea01981dab07033e744db6db1d12308e5" },
        { "cjpeg_arith_420", 12, "654c735012becce73847aba388abaca27cec1c956b17eee52d6f0bd3d3e88e91" },
        { "cjpeg_arith_progressive_444", 10, "43b25d596b29943632a81eb973928996e26c5379144e72da710764c1d6d4ef33" },
        { "cjpeg_arith_progressive_444", 11, "0c04ad6414df3668f54b4d9f74b7fe71a3a4308652e35e3bda155cec2dd3c873" },
        { "cjpeg_arith_progressive_444", 12, "83c04c73300278557658d7316d445efd64f4bcb7c4f29ab7b5150e9c825afdef" },
        { "cjpeg_restart_1row_420", 12, "79359116a674af330886fa8764c9a3dcb7c70ea9b735e1173f70f1ac91ff84fe" },
        { "cjpeg_restart_1row_420", 15, "2f0b20218b2ded133e89bf7d1b76d69b8ff9aaff510c928efa727e3f8b50a1f6" },
        { "cjpeg_restart_1row_420", 16, "6c5fcdf1e59afb7b84a7482ade1f2dc0bfbd17903271d270dc4aa1eced39f2b1" },
        { "cjpeg_restart_5blocks_444", 12, "cffb0051ebe7d424fc2694483db7a1b9857f50a473efa4b6f8c0d78d36c95d7a" },
        { "cjpeg_restart_5blocks_444", 13, "16f6af0f0cec84000ec9490c1ab9a635212812d359e8b206ecc4711541388521" },
        { "cjpeg_restart_5blocks_444", 15, "82b266f3aa9e8d9f7aecf1b0651ed1e8b4ea819d3a3208d36aa43a669398aa59" },
        { "cjpeg_restart_progressive_420", 0, "538151dba33f7139873cc54d451f0a61aee1ba70cc6792ff0f9462dc6beb74ee" },
        { "cjpeg_restart_progressive_420", 1, "1f1a137b798c13b6dd4cd8498dd4f6b2d297bb82ce8c9ef98bd074a1dc4a2477" },
        { "cjpeg_restart_progressive_420", 10, "a940ee54c7202f1d8cb526fd6d5484f6f9feb8faa110bfc9ce2f11f86220ba6b" },
        { "cjpeg_sample_1x2_440", 14, "21ecae8e308a01c7936027703942c7c0f23b13e10cfe88b51c0a94ea3cc4f3ae" },
        { "cjpeg_sample_1x2_440", 15, "fe8d43c1c0e3878e335ef2dcb002318f4f8194abbda5dc6247ea856a4eecc70f" },
        { "cjpeg_sample_1x2_440", 17, "3b75b93c2eb0c90495d8980ce839ed475c15e251206d2297c813e6e1574fe7c3" },
        { "cjpeg_sample_4x1_411", 12, "39736a201a48f5ce57d0d5cf98d6ae394c11276d2f71f7d17d2bbcd1653ba8ae" },
        { "cjpeg_sample_4x1_411", 15, "1148c50f0bcd27ad2077039f03dac1851442f8714601bbf28b1d3846cb4d3c40" },
        { "cjpeg_sample_4x1_411", 25, "77019db2c4f643a3fe27100b6d3435f2917b9de5deb2062c69a1cd67e6bb2ccd" },
        { "pil_cmyk_q90_adobe", 1, "350981c92b7d175b76daa917736d1addbf7af6d9f557c141aba422c1c625ffb6" },
        { "pil_cmyk_q90_adobe", 10, "2ae3d23a75fd7f1b4f258062db235b82e274217f90e2f62f8357e095a41cafd6" },
        { "pil_cmyk_q90_adobe", 14, "28956af329a9331594d2450bf725810c84f7523aba1e99c2cdffe8b11e5066cb" },
        { "pil_gray_q85", 14, "cccbfb853e655ccecbaa38bd6e1fee90518203d5e87a73aa39a97ffbdf5d31fe" },
        { "pil_gray_q85", 15, "9f9b5e25ecd5d851d61a4c1555e17340644c864a6b25215efb1ed2e0235cfa00" },
        { "pil_gray_q85", 2, "d131109d3f9a9ad1b7d301eba035b204b05a11fe42f2d455f6bc8ab0a3b58671" },
        { "pil_q75_420_defaults", 0, "375f99a37f025a9fceb3459964f1330d7914f8180d9b1d65b9ccdd7bd2d1d7c7" },
        { "pil_q75_420_defaults", 1, "900a1409034144193582fe3deca510e3620a94e5f9b690b3715643ae2f8e8712" },
        { "pil_q75_420_defaults", 11, "df9eff4993c9c23132c60a47c7860bdf541a9163213daae61dbf41b17e7d184c" },
        { "pil_q80_420_progressive", 1, "789f6a9302c0f5bb35446e2b15d9a0f30efdbb02ff96ae0e2c239452d9cfed90" },
        { "pil_q80_420_progressive", 11, "525e643d72370724352193c2c17d156e91e02aa38094e85c128029407200392e" },
        { "pil_q80_420_progressive", 12, "01d8b3d416cb439f8c523456c1df0ede5001bf44c97dc2fd1789b2cf5f453dfc" },
        { "pil_q90_444", 12, "a846167ff3c24b348a67da761eb686bc66be05b342429e8d993e2906e738cba2" },
        { "pil_q90_444", 17, "46b7454291267666f45a3f09c8a1b7fde8efcd4f3b9a94d7895c10ddbb300211" },
        { "pil_q90_444", 21, "e6ea58401556e66faff3ac8338df5c1f8145e0108cd132fe2e32f8d089d10317" },
        { "pil_q95_422", 12, "259c6fcfcec4f6afe4706f0ad0c6dbfe691adc4a340ec1e4b49bab1a2ff56952" },
        { "pil_q95_422", 21, "2a2fce3688b7f8eaadeaa57aed134fb90dc07a004889f343c0d6dcccf5701a88" },
        { "pil_q95_422", 22, "694232a1860982cd7b5921b4241b0679496fed6ad41d4809591f1dc4f608a598" },
        { "turbojpeg_ycck_420", 11, "e3685c5721ea459f354f5c4ca2e6832d4b0884bf5240550646f6d53021a31d6e" },
        { "turbojpeg_ycck_420", 14, "3b3f342fb1c5526b289038503f72168e251d9bcbcaab4452a711d555ae4298ce" },
        { "turbojpeg_ycck_420", 18, "4b69ec390fb7f10a99580804f825e8b7493f268082b1a6b31cb4844bd5917db5" },
    };

    [Theory]
    [MemberData(nameof(DamagedData))]
    public void DamagedCompressedDataDecodesAsLibjpeg(string stem, int seed, string sha256)
    {
        var jpeg = JpegDamage.Damage(File.ReadAllBytes(JpegReferenceFile.Named(stem).Path), seed);
        var image = JpegDecoder.Decode(jpeg, stem, 100_000_000);
        Assert.Equal(sha256, Convert.ToHexStringLower(SHA256.HashData(image.Bytes!)));
    }
}
